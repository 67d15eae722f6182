import type { Clock, Closable, Epoch, EpochStore, Logger } from '@gc/core';
import type { Registry } from 'prom-client';

/**
 * States of an {@link Election}.
 * - `starting`: reading the lease for the first time;
 * - `follower`: contending, someone else (or nobody) holds the lease;
 * - `observer`: `observeOnly` was set, never contends;
 * - `leader`: holds the lease and may act (check {@link Election.isLeader} before every action);
 * - `cooldown`: stepped down and waits `cooldownMs` before contending again;
 * - `closed`: {@link Election.close} was called.
 */
export const ElectionState = {
  Starting: 'starting',
  Follower: 'follower',
  Observer: 'observer',
  Leader: 'leader',
  Cooldown: 'cooldown',
  Closed: 'closed',
} as const;
/** One of {@link ElectionState}. */
export type ElectionStateValue = (typeof ElectionState)[keyof typeof ElectionState];

/**
 * Why a leader stopped being leader without asking to.
 * - `renew-deadline`: no successful renew within `renewDeadlineMs` of sending the last good one;
 * - `lease-taken`: the lease now names another holder (a renew's CAS failed or the watch showed it);
 * - `lease-deleted`: the lease was deleted or purged under this node (by an operator, a recreated bucket,
 *   or a server delete marker) while it held it;
 * - `fenced`: {@link Election.observeEpoch} reported a higher epoch than this leader's.
 */
export const LostReason = {
  RenewDeadline: 'renew-deadline',
  LeaseTaken: 'lease-taken',
  LeaseDeleted: 'lease-deleted',
  Fenced: 'fenced',
} as const;
/** One of {@link LostReason}. */
export type LostReasonValue = (typeof LostReason)[keyof typeof LostReason];

/** How a lease was acquired: `create` of a free key, `takeover` of an expired one, or `fast-failover`. */
export type AcquireVia = 'create' | 'takeover' | 'fast-failover' | 'reacquire';

/**
 * The JSON value stored under the election key. A public format: other tools read it.
 * `{"holder":"node-a","instance":"k2x…","epoch":1767225600123,"ttlMs":3000,"live":false,"priority":10}`
 */
export interface LeaseRecord {
  /** Node id of the holder. */
  holder: string;
  /** Random id of the holder process's Election instance (tells a restarted node from its old self). */
  instance: string;
  /** Fencing epoch of this grant. */
  epoch: Epoch;
  /** The holder's TTL in ms: contenders wait at least this long on an unchanged revision. */
  ttlMs: number;
  /** True when the holder answers liveness probes (fast failover). */
  live: boolean;
  /** The holder's priority. */
  priority: number;
  /** Wall-clock ms when this grant was made (display only, never used for timing). */
  grantedAt: number;
}

/** What an observer knows about the current leader. */
export interface LeaderInfo {
  /** Node id of the leader, or null when the lease is free. */
  holder: string | null;
  /** Epoch of the current grant, or of the last one seen when the lease is free (0 before any). */
  epoch: Epoch;
  /** KV revision of the lease entry (0 when unknown). */
  revision: number;
}

/** Events of an {@link Election}, by name. */
export interface ElectionEvents {
  /**
   * This node became leader, and still is when the event is emitted ({@link Election.isLeader} is true:
   * a grant that was overtaken while its write was in flight — a later revision or a higher epoch seen
   * before the reply — is never announced). `tookMs`: from starting to contend (or from losing the last
   * grant) to the grant. `sentAt` / `sentAtWallMs`: when the grant was sent, on the election's clock
   * (`Clock.now()`, monotonic) and on the wall clock; `deadline` = `sentAt + renewDeadlineMs`, the clock
   * time at which this node stops acting unless a renew succeeds first.
   */
  acquired: {
    epoch: Epoch;
    revision: number;
    via: AcquireVia;
    tookMs: number;
    sentAt: number;
    sentAtWallMs: number;
    deadline: number;
  };
  /**
   * A renew succeeded. `latencyMs`: send to reply. `sentAt`: when it was sent (`Clock.now()`); `deadline`:
   * the new clock time at which this node stops acting unless another renew succeeds.
   */
  renewed: { epoch: Epoch; revision: number; latencyMs: number; sentAt: number; deadline: number };
  /** This node stopped being leader without asking to. */
  lost: { epoch: Epoch; reason: LostReasonValue; detail?: string };
  /** This node gave up leadership on purpose ({@link Election.stepDown} or {@link Election.close}). */
  'stepped-down': { epoch: Epoch; released: boolean };
  /** Any state change. */
  state: { from: ElectionStateValue; to: ElectionStateValue };
  /**
   * The observed leader changed (holder, epoch or free/held). A holder whose lease revision stayed unchanged
   * for a full TTL on this node's clock is reported gone (`holder: null`, same revision): the server never
   * expires a lease, so this is how observers see a crashed leader that nobody replaced.
   */
  leader: LeaderInfo;
  /** A store or watch operation failed; the election keeps going (retries on its own). */
  error: { op: string; error: Error };
}
/** Names of {@link ElectionEvents}. */
export type ElectionEventName = keyof ElectionEvents;

/**
 * One {@link Election} event as a single value: its name in `type` beside its data — the shape every gc
 * package reports events in (`onEvent`), so one listener can log or audit them all.
 */
export type ElectionEvent = {
  [E in ElectionEventName]: { type: E } & ElectionEvents[E];
}[ElectionEventName];

/** An async iterator of leader changes, as returned by {@link Election.watch}. */
export interface LeaderWatch extends AsyncIterable<LeaderInfo> {
  /** Ends the iteration; pending `next()` calls resolve as done. Idempotent. */
  stop(): void;
}

/** Options of {@link createElection}. Only `bucket` and `nodeId` are required. */
export interface ElectionOptions {
  /** KV bucket that holds the lease (created when missing). Use `resourceNames(p).app(a).election` from `@gc/core`. */
  bucket: string;
  /** Key of the lease inside the bucket. Default `leader`. */
  key: string;
  /** This node's id (letters, digits, `-`, `_`). */
  nodeId: string;
  /** Lease time-to-live in ms. Default 3000. */
  ttlMs: number;
  /** How often the leader renews, in ms. Default `ttlMs / 3`. */
  renewIntervalMs: number;
  /**
   * The leader stops acting when no renew succeeded within this many ms of *sending* the last successful
   * one. Must be < `ttlMs`; `ttlMs / renewDeadlineMs` is the clock-rate difference tolerated. Default `2 * ttlMs / 3`.
   */
  renewDeadlineMs: number;
  /**
   * How often contenders re-read the lease revision (on top of the watch), in ms. Default
   * `min(250, ttlMs / 12)`. A leader reads every `max(pollIntervalMs, renewIntervalMs / 2)`.
   */
  pollIntervalMs: number;
  /** After a step-down, wait this many ms before contending again. Default `renewIntervalMs`. */
  cooldownMs: number;
  /**
   * 0..10, default 10. When the lease is free, a contender waits `(10 - priority) * priorityStepMs` before
   * trying, so higher priority wins ties. A holder is never pre-empted (that would cost a failover).
   */
  priority: number;
  /** Delay per priority level below 10, in ms. Default 50. */
  priorityStepMs: number;
  /** Never become leader; only observe. Default false. */
  observeOnly: boolean;
  /** Where the highest epoch seen is persisted. Default in memory; use `fileEpochStore(path)` for durability. */
  epochStore?: EpochStore;
  /**
   * Floor new epochs at the wall clock in ms (`max(highest seen + 1, Date.now())`), so that a node that never
   * saw earlier epochs (new node, bucket recreated) still picks a higher one. Default true.
   */
  wallClockEpochFloor: boolean;
  /**
   * Opt-in fast failover: the leader answers liveness probes; contenders that get "no responders"
   * `fastFailoverProbes` times in a row take over before the TTL. Answers that come less than
   * `renewDeadlineMs` after this contender started or its connection came back (a server restart) do not
   * count: a live holder may not have re-subscribed yet. See the README for the trade-off. Default false.
   */
  fastFailover: boolean;
  /** Interval of liveness probes in ms (fast failover only). Default 100. */
  fastFailoverIntervalMs: number;
  /** Consecutive "no responders" answers needed before a fast takeover. Default 2. */
  fastFailoverProbes: number;
  /** Bucket replicas when the bucket is created (1, 3 or 5). Default 1. */
  replicas: number;
  /** Timeout of each KV operation in ms (a failed renew is retried every `renewIntervalMs / 4` until the deadline). Default `renewIntervalMs / 2`. */
  opTimeoutMs: number;
  /** Time source. Default `realClock`. */
  clock: Clock;
  /** Logger. Default silent. */
  logger: Logger;
  /** prom-client registry to register metrics on. Default none (no metrics). */
  registry?: Registry;
}

/**
 * A lease-based leader election on one KV key. Created by {@link createElection}.
 *
 * Before every action a leader takes it must check {@link Election.isLeader} (it compares the deadline with
 * the clock at call time, so it is right even when timers ran late) and stamp the action with
 * {@link Election.epoch}.
 */
/** Options of {@link Election.stepDown}. */
export interface StepDownOptions {
  /**
   * Delete the lease so a follower takes over at once (default `true`). `false` stops renewing and acting
   * but leaves the record to run out by its TTL: the followers see what they see when a leader crashes.
   */
  release?: boolean;
  /** How long this node stays out of the election afterwards (default: the election's `cooldownMs`). */
  cooldownMs?: number;
}

export interface Election extends Closable {
  /** This node's id. */
  readonly nodeId: string;
  /** Current state. */
  state(): ElectionStateValue;
  /** True while this node holds the lease and its renew deadline has not passed. */
  isLeader(): boolean;
  /** The epoch of this node's grant while leader; otherwise the epoch of the current leader (0 if none seen). */
  epoch(): Epoch;
  /** Highest epoch this node has seen (persisted in the epoch store). */
  highestEpoch(): Epoch;
  /** The current leader as last observed. */
  leader(): LeaderInfo;
  /** Resolves with this node's epoch once it is leader; rejects with `TimeoutError` after `timeoutMs`. */
  waitForLeadership(timeoutMs: number): Promise<Epoch>;
  /**
   * Leader changes: the current leader first, then each change this node observes. Resolves once the watch
   * is live — the current leader is queued and every change observed after the call is delivered. On a
   * closed election it resolves to an ended watch (the last leader seen, then done).
   *
   * @example
   * for await (const info of await election.watch()) console.log(info.holder, info.epoch);
   */
  watch(): Promise<LeaderWatch>;
  /** Subscribes to one event by name; returns a function that unsubscribes. */
  on<E extends ElectionEventName>(event: E, listener: (data: ElectionEvents[E]) => void): () => void;
  /**
   * Subscribes to every event, each as one `{ type, ...data }` value ({@link ElectionEvent}), in the order
   * they are emitted (the `onEvent` of every gc package); returns a function that unsubscribes.
   *
   * @example
   * const off = election.onEvent((e) => logger.info(`election ${e.type}`, e));
   */
  onEvent(listener: (event: ElectionEvent) => void): () => void;
  /**
   * Reports an epoch seen elsewhere (for example in a `FencedError` from a resource). Raises the highest
   * epoch; a leader with a lower epoch stops at once (reason `fenced`).
   */
  observeEpoch(epoch: Epoch): void;
  /**
   * Gives up leadership: stops acting, deletes the lease (CAS on its revision), waits `cooldownMs`. No-op when
   * not leader. With `{ release: false }` it keeps the lease record and only stops renewing it, so the others
   * take over after the TTL, as after a crash (failover drills).
   */
  stepDown(opts?: StepDownOptions): Promise<void>;
  /**
   * Turns contending on or off at run time (placement: a node the app is not placed on stays out).
   * `false`: a follower becomes an observer at once; a leader keeps leading until it steps down or loses the
   * lease (the caller stops acting first, then calls {@link Election.stepDown}), and observes afterwards.
   * `true`: an observer becomes a follower and contends again. `priority` (0 … 10, default unchanged)
   * replaces the election's priority from now on: a lower one waits longer for a free lease, so a preferred
   * node wins a hand-over. No-op once closed.
   */
  setCandidate(candidate: boolean, opts?: { priority?: number }): void;
  /** True while this node contends (or leads); false for an observer. */
  isCandidate(): boolean;
  /**
   * Steps down when leader, stops every timer, watch and subscription, and closes the store when the election
   * opened it. Idempotent. Does not close the connection. An election does not close by itself.
   */
  close(): Promise<void>;
}
