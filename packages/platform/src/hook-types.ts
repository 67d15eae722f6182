// The app hooks' signatures and what they receive: transition and partition contexts, leader and member
// changes, hook names and failures (run by hooks.ts, wired by app.ts).
import type { Epoch } from '@gc/core';
import type { HealthChange } from '@gc/health';

/** Passed to onActive/onPassive. `signal` aborts when the node loses the role while the hook runs. */
export interface TransitionContext {
  app: string;
  nodeId: string;
  /** The fencing epoch of this leadership (0 in pool mode). Stamp it on everything the hook writes. */
  epoch: Epoch;
  /** Aborted when the transition is superseded (leadership lost during onActive, shutdown). */
  signal: AbortSignal;
  /** Why the transition happens (`elected`, `lost: renew-deadline`, `step-down`, `shutdown`, `started`). */
  reason: string;
}

/** The current leader of an active-passive app as every node sees it. */
export interface LeaderChange {
  app: string;
  /** Node id of the leader, or null while there is none. */
  leader: string | null;
  epoch: Epoch;
}

/** A node joining or leaving (from membership). */
export interface MemberChange {
  nodeId: string;
  labels: Record<string, string>;
  /** `left` for a polite leave, `lost` when its heartbeats stopped (crash, partition). */
  reason: 'joined' | 'left' | 'lost';
}

/** Hook functions, run in the order documented in the README; each with a timeout. */
export interface AppHooks {
  /** After the app starts on this node, before it competes for leadership. */
  onStart: (ctx: { app: string; nodeId: string }) => void | Promise<void>;
  /** When this node becomes active (after data promotion, VIP and backend in later packages). */
  onActive: (ctx: TransitionContext) => void | Promise<void>;
  /** When this node stops being active (before the backend stops and the VIP is released). */
  onPassive: (ctx: TransitionContext) => void | Promise<void>;
  /** On every node, when the app's leader changes. */
  onLeaderChange: (change: LeaderChange) => void | Promise<void>;
  /** Before the app stops on this node (after onPassive when it was active). */
  onStop: (ctx: { app: string; nodeId: string }) => void | Promise<void>;
  /** A node joined the platform. */
  onMemberJoin: (change: MemberChange) => void | Promise<void>;
  /** A node left the platform (politely or lost). */
  onMemberLeave: (change: MemberChange) => void | Promise<void>;
  /** A health check of this node changed state. */
  onHealthChange: (change: HealthChange) => void | Promise<void>;
  /**
   * Ring mode: this node takes `partition` (load its state here). Calls for the partition are held until it
   * returns; a throw is retried by the ring with backoff and the partition is not served meanwhile.
   */
  onOwn: (ctx: PartitionOwnContext) => void | Promise<void>;
  /**
   * Ring mode: this node hands `partition` off (flush its state here). Calls in flight for it have finished
   * and new ones are held for the next owner; finish before `deadline`.
   */
  onRelease: (ctx: PartitionReleaseContext) => void | Promise<void>;
  /**
   * Placement (active-passive or pool with `placement`): the app is about to leave this node of its own
   * accord — its leader hands the lead to the preferred leader or steps down because the app is no longer
   * placed here, or a pool instance stops because it is no longer placed here. Called before it leaves, once
   * per migration (asked again only while it refuses, see {@link MigrationContext}). Return
   * `{ refuse: reason }` (or throw: the reason is the error's message) to keep the app here for now: the
   * node declares the refusal (`refused` of its `decl.<node>`), and the hook is asked again every 5 s and
   * whenever a newer decision changes the migration (its target, a forced drain). Once this node's drain is
   * forced (its deadline passed) a refusal is ignored (audited `placement.migration_overridden`). Never
   * called when the app leaves involuntarily (lost lease, shutdown, crash). Every function registered is
   * asked; one refusal is enough.
   */
  onMigrationStart: (ctx: MigrationContext) => MigrationAnswer | Promise<MigrationAnswer>;
  /**
   * Placement: a migration that {@link AppHooks.onMigrationStart} was asked about has ended, on the node it
   * was asked on: `completed` once the app left here (pool) or another node leads it (active-passive);
   * `abandoned` when it did not happen (a newer decision keeps the app here, this node lost the lead or
   * stops, the lead came back, or it was not done within 60 s of leaving; `detail` says which).
   */
  onMigrationComplete: (ctx: MigrationCompleteContext) => void | Promise<void>;
  /**
   * Placement, on every node that declares the app: the scheduler reports that no node may run it (a
   * constraint no live node meets, `minNodes` not met, …). Called once per change of the reason, not per
   * decision; nothing is called when the app becomes placeable again (`app.status().placement` says so).
   */
  onPlacementInvalid: (ctx: PlacementInvalidContext) => void | Promise<void>;
}

/** What {@link AppHooks.onMigrationStart} returns: nothing to let the app go, `{ refuse }` to keep it here. */
export type MigrationAnswer = void | undefined | { refuse: string };

/** Argument of the `onMigrationStart` hook. */
export interface MigrationContext {
  app: string;
  /** This node, which the app is about to leave. */
  nodeId: string;
  /** Active-passive: the node the lead goes to; absent when the app just leaves (pool, no successor). */
  to?: string;
  /**
   * Why: `drain` (this node is drained), `moved` (the lead goes to the preferred leader: an operator's
   * move, a better node), `placement changed` (the app is no longer placed here: labels, constraints).
   */
  reason: string;
  /** The placement's own words for it (`not placed here: labels do not match "disk=ssd" (generation 7)`). */
  detail: string;
  /** This node's drain passed its deadline: a refusal is ignored, the app leaves anyway. */
  forced: boolean;
  /** Generation of the placement decision the migration follows. */
  generation: number;
  /** Aborted when the migration is given up while the hook runs (see `onMigrationComplete`'s `abandoned`). */
  signal: AbortSignal;
}

/** Argument of the `onMigrationComplete` hook. */
export interface MigrationCompleteContext {
  app: string;
  nodeId: string;
  /** The node the app left (this node). */
  from: string;
  /** Active-passive, completed: the node that leads now. */
  to?: string;
  /**
   * Completed: ms from the `onMigrationStart` call that let the app go to the end (refusals before it not
   * counted); abandoned: ms since the migration's first `onMigrationStart` call.
   */
  tookMs: number;
  /** The migration's reason, as `onMigrationStart` got it. */
  reason: string;
  result: 'completed' | 'abandoned';
  /** Abandoned: why. */
  detail?: string;
}

/** Argument of the `onPlacementInvalid` hook. */
export interface PlacementInvalidContext {
  app: string;
  nodeId: string;
  /** The scheduler's words (`no node set satisfies app "orders": onLabel: no node has "disk=nvme"`). */
  reason: string;
  /** The constraint that cannot be met (`onLabel`, `minNodes`, `withApp`, `spec`, …). */
  constraint: string;
}

/** Argument of the `onOwn` hook (ring mode). */
export interface PartitionOwnContext {
  app: string;
  nodeId: string;
  partition: number;
  /** This node's fencing epoch for the partition (higher than every earlier owner's). */
  epoch: Epoch;
  /** Aborted when this node stops owning the partition (hand-off, lost lease, shutdown) or onOwn times out. */
  signal: AbortSignal;
  /** The previous owner, when there was one. */
  from: string | undefined;
}

/** Argument of the `onRelease` hook (ring mode). */
export interface PartitionReleaseContext {
  app: string;
  nodeId: string;
  partition: number;
  epoch: Epoch;
  /** Aborted at `deadline`. */
  signal: AbortSignal;
  /** Monotonic time (the platform clock's `now()`) by which the hand-off must be done. */
  deadline: number;
  /** The next owner (undefined when the ring closes with no other member). */
  to: string | undefined;
}
/** A hook name. */
export type HookName = keyof AppHooks;

/** A hook that failed or timed out. Also audited and counted. */
export interface HookFailure {
  app: string;
  hook: HookName;
  error: Error;
  timedOut: boolean;
}
