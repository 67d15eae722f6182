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
