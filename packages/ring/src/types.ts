import type { Clock, Closable, Epoch, Logger } from '@gc/core';
import type { RouteHook } from '@gc/rpc';
import type { Registry } from 'prom-client';

/**
 * States of a partition record (`p.{n}` in the ring bucket).
 * - `owning`: claimed by `owner` with `epoch`; its `onOwn` runs. Calls are held, not served.
 * - `owned`: `owner` serves the partition (onOwn finished). Calls are routed to it.
 * - `released`: the last owner finished its hand-off (drained, ran `onRelease`) and stopped acting; the
 *   next owner claims it with `epoch + 1`.
 */
export const PartitionState = { Owning: 'owning', Owned: 'owned', Released: 'released' } as const;
/** One of {@link PartitionState}. */
export type PartitionStateValue = (typeof PartitionState)[keyof typeof PartitionState];

/**
 * The JSON record of one partition under key `p.{partition}` (schema version 1). A public format: the CLI
 * and other tools read it. gc never deletes it, so epochs only grow.
 *
 * `{"v":1,"owner":"n2","instance":"Xc3…","epoch":7,"state":"owned","at":1767225600123}`
 */
export interface PartitionRecord {
  v: 1;
  /** Node id of the owner (or, when `released`, of the last owner). */
  owner: string;
  /** Random id of the owner's ring instance (a restarted node has a new one). */
  instance: string;
  /**
   * Fencing epoch of the owner's grant: every claim writes the previous epoch + 1 with a compare-and-set, so
   * it strictly increases per partition. Give it to the resources the partition's owner writes.
   */
  epoch: Epoch;
  state: PartitionStateValue;
  /** Wall-clock ms of the write (display only). */
  at: number;
  /** On `released` records: the node the partition was handed to. */
  to?: string;
}

/**
 * The JSON record of a ring member under key `members.{nodeId}` (schema version 1). Renewed with a
 * compare-and-set every `renewIntervalMs`; observers treat the member as gone when its revision has not
 * changed for `ttlMs` on their own monotonic clock.
 */
export interface MemberRecord {
  v: 1;
  nodeId: string;
  /** Random id of the member's ring instance. */
  instance: string;
  /** Relative capacity: a member with weight 2 gets about twice the partitions of one with weight 1. */
  weight: number;
  /** The member's lease TTL in ms (observers apply it to this member). */
  ttlMs: number;
  /** `active`, or `leaving` after `close()` began: it gets no new partitions and hands its own off. */
  state: 'active' | 'leaving';
  /** Wall-clock ms when the instance joined (display only). */
  startedAt: number;
  /** Wall-clock ms of the last renewal (display only). */
  heartbeatAt: number;
}

/** A live ring member as this node sees it. */
export interface RingMember {
  nodeId: string;
  instance: string;
  weight: number;
  state: 'active' | 'leaving';
  ttlMs: number;
  startedAt: number;
  /** Partitions it serves now (`owned` records). */
  partitions: number;
  /** True for this node. */
  self: boolean;
}

/** Why the coordinator wrote (or did not write) a new assignment. */
export const RebalanceReason = {
  /** The first assignment of the ring. */
  Initial: 'initial',
  /** Partitions without a live owner (a member crashed or left, or never assigned) were assigned. */
  Orphans: 'orphans',
  /** Moves started to bring the assignment to the balanced target. */
  Rebalance: 'rebalance',
  /** Nothing to do: every partition is with its target. */
  Balanced: 'balanced',
  /** Membership changed less than `settleMs` ago: rebalancing waits (orphans are assigned at once). */
  NotStable: 'not-stable',
  /** `maxConcurrentMoves` moves are in progress: the rest waits for them. */
  BudgetReached: 'budget-reached',
} as const;
/** One of {@link RebalanceReason}. */
export type RebalanceReasonValue = (typeof RebalanceReason)[keyof typeof RebalanceReason];

/** Context of {@link RingOptions.onOwn}. */
export interface OwnContext {
  /** The grant's fencing epoch (strictly higher than every earlier owner's of this partition). */
  epoch: Epoch;
  /**
   * Aborted when this node stops owning the partition (a hand-off begins, its lease is lost, the ring
   * closes) or when `ownTimeoutMs` passes while `onOwn` runs. Stop the partition's background work on it.
   */
  signal: AbortSignal;
  /** The previous owner, when there was one. */
  from: string | undefined;
}

/** Context of {@link RingOptions.onRelease}. */
export interface ReleaseContext {
  /** The epoch this node owned the partition under. */
  epoch: Epoch;
  /** Aborted at `deadline`. */
  signal: AbortSignal;
  /** Monotonic clock time (`clock.now()`) by which the hand-off must be finished. */
  deadline: number;
  /** The node the partition goes to (undefined when the ring closes with no other member). */
  to: string | undefined;
}

/** Something that happened in the ring, for audit trails and logs. */
export type RingEvent =
  | { type: 'joined'; nodeId: string; instance: string; weight: number }
  | { type: 'own-start'; partition: number; epoch: Epoch; from: string | undefined; takeover: boolean }
  | { type: 'owned'; partition: number; epoch: Epoch; tookMs: number }
  | { type: 'own-failed'; partition: number; epoch: Epoch; attempt: number; error: Error }
  | { type: 'release-start'; partition: number; epoch: Epoch; to: string | undefined; inFlight: number }
  | {
      type: 'released';
      partition: number;
      epoch: Epoch;
      to: string | undefined;
      tookMs: number;
      drainMs: number;
      /** True when in-flight calls or `onRelease` were still running at the deadline. */
      timedOut: boolean;
    }
  | { type: 'release-failed'; partition: number; epoch: Epoch; error: Error }
  | { type: 'lost'; partition: number; epoch: Epoch; reason: string }
  | { type: 'lease-lost'; reason: string; partitions: number }
  | { type: 'coordinator'; epoch: Epoch }
  | { type: 'coordinator-lost'; epoch: Epoch }
  | {
      type: 'rebalance';
      reason: RebalanceReasonValue;
      /** Map version written (unchanged for `balanced`, `not-stable` without orphans). */
      version: number;
      /** Moves started by this decision. */
      started: number;
      /** Moves left for later (budget or stability). */
      deferred: number;
      /** Partitions without a live owner that were assigned. */
      orphans: number;
      /** Moves in progress after the decision. */
      inProgress: number;
      /** Max over members of partitions / weighted fair share, of the target assignment. */
      imbalance: number;
      members: number;
    }
  | { type: 'move-done'; partition: number; from: string | undefined; to: string; tookMs: number }
  | { type: 'move-stuck'; partition: number; from: string | undefined; to: string; ageMs: number }
  | { type: 'member-expired'; nodeId: string; instance: string }
  | { type: 'pin'; partition: number; node: string }
  | { type: 'unpin'; partition: number };

/** Options of {@link createRing}. `platform`, `app` and `nodeId` are required. */
export interface RingOptions {
  /** Platform name (bucket `{platform}_{app}_ring`). Required. */
  platform: string;
  /** App name. Required. */
  app: string;
  /** This member's node id (letters, digits, `-`, `_`). Required. */
  nodeId: string;
  /**
   * Number of partitions of the app (1..16384). Fixed for the life of the app's ring: the first member
   * stores it; a member that passes another count is refused with `PartitionCountMismatchError`. Leave
   * it undefined to use the stored count (256 when the ring is new). Default 256.
   */
  partitions: number | undefined;
  /** Relative capacity of this member (> 0, ≤ 1000): weight 2 gets about twice the partitions. Default 1. */
  weight: number;
  /**
   * Called when this node takes a partition, before any call for it is served (calls are held meanwhile).
   * A throw (or `ownTimeoutMs`) is reported as `own-failed` and retried with backoff; the partition is not
   * served until it succeeds. Default none.
   */
  onOwn?: (partition: number, ctx: OwnContext) => void | Promise<void>;
  /**
   * Called when this node hands a partition off, after calls in flight for it have finished and new calls
   * are refused (the callers hold them for the next owner). The partition is released when it returns,
   * throws (reported as `release-failed`) or the deadline passes. Default none.
   */
  onRelease?: (partition: number, ctx: ReleaseContext) => void | Promise<void>;
  /**
   * Member lease TTL in ms, and the coordinator election's TTL: a crashed member's partitions are
   * reassigned about this long after its last renewal. Default 3000; minimum 300.
   */
  ttlMs: number;
  /** Lease renewal interval in ms. Default `ttlMs / 3`. */
  renewIntervalMs: number;
  /**
   * This member stops serving every partition when no renewal succeeded within this many ms of sending the
   * last good one. Must be < `ttlMs` (`ttlMs / renewDeadlineMs` is the clock-rate difference tolerated).
   * Default `2 × ttlMs / 3`.
   */
  renewDeadlineMs: number;
  /** Time limit of one `onOwn` run in ms. Default 30000. */
  ownTimeoutMs: number;
  /** Time limit of a hand-off on the old owner (drain + `onRelease`) in ms. Default 30000. */
  releaseTimeoutMs: number;
  /** Bound of a polite leave (`close()`) in ms: handing every partition off. Default 30000. */
  leaveTimeoutMs: number;
  /**
   * Most partitions moving between live members at once (partitions of crashed members are reassigned
   * regardless, availability first). Moves beyond it wait for earlier ones (`budget-reached`). Default 256.
   */
  maxConcurrentMoves: number;
  /** Membership must be unchanged this long (ms) before live partitions are moved (`not-stable`). Default 200. */
  settleMs: number;
  /** A move in progress longer than this (ms) is reported stuck (metric and `move-stuck` event). Default 30000. */
  stuckMoveMs: number;
  /** Longest time (ms) a call for a moving partition is held before `PartitionUnavailableError`. Default 10000. */
  holdTimeoutMs: number;
  /** Most calls held at once by this node's router; more fail at once with `HoldBufferFullError`. Default 10000. */
  maxHeldCalls: number;
  /** Contend for the coordinator role (one member computes the assignment). Default true. */
  coordinator: boolean;
  /** KV writes this member keeps in flight for claims and releases. Default 64. */
  maxParallelWrites: number;
  /** Timeout of one KV operation in ms. Default 5000. */
  opTimeoutMs: number;
  /** Bucket replicas when gc creates it (1, 3 or 5). Default 1. */
  replicas: number;
  /** Clock for every timing decision. Default `realClock`. */
  clock: Clock;
  /** Logger. Default silent. */
  logger: Logger;
  /** Prometheus registry for `gc_ring_*` metrics. Default none. */
  registry?: Registry;
  /** Called for every {@link RingEvent} (the platform audits them). Must not throw. */
  onEvent?: (event: RingEvent) => void;
}

/** What {@link createRing} takes: the required names and any option. */
export type RingInit = Partial<RingOptions> & Pick<RingOptions, 'platform' | 'app' | 'nodeId'>;

/** The ring's partition map as one node sees it. */
export interface RingSnapshot {
  platform: string;
  app: string;
  /** Number of partitions. */
  partitions: number;
  /** Changes with every observed change. */
  version: number;
  /** Serving owner per partition (`owned` records), null while the partition moves or has no owner. */
  owners: (string | null)[];
  /** Record state per partition (null: never owned). */
  states: (PartitionStateValue | null)[];
  /** Epoch of each partition's last grant (0: never owned). */
  epochs: Epoch[];
  /** The coordinator's target per partition (null before the first assignment). */
  targets: (string | null)[];
  /** Partitions served per node. */
  counts: Record<string, number>;
  /** Partitions whose target is not yet their serving owner. */
  moving: number[];
  /** Live members. */
  members: RingMember[];
  /** Node id of the coordinator, null when none is known. */
  coordinator: string | null;
  /** Pinned partitions: partition → node. */
  pins: Record<number, string>;
  /** Version of the coordinator's map (0 before the first). */
  mapVersion: number;
}

/** Async iterable of snapshots (the current one first, then one per change, coalesced); `stop()` ends it. */
export interface RingWatcher extends AsyncIterable<RingSnapshot> {
  stop(): void;
}

/** Ends an admission: call once when the work admitted for a key is done. */
export type Admission = () => void;

/**
 * Admits work for `key` on this node (the `admitKey` hook of `createRpcServer` from `@gc/rpc`). Returns
 * the function to call when the work is done, or throws `NotOwnerError` (`GC_RPC_NOT_OWNER`) when this node
 * does not serve the key's partition now; the caller then holds the call for the next owner.
 */
export type AdmitHook = (key: string, method?: string) => Admission;

/** What one member reports about itself (for component status and health). */
export interface RingStatus {
  /** True while this member holds its lease (false after losing it, until it has joined again). */
  joined: boolean;
  /** Random id of this member's current instance. */
  instance: string;
  /** Ms until this member stops serving unless a renewal succeeds (0 when not serving). */
  leaseRemainingMs: number;
  /** Partitions served now. */
  serving: number;
  /** Partitions claimed whose `onOwn` has not finished. */
  owning: number;
  /** Partitions being handed off by this member. */
  releasing: number;
  coordinator: boolean;
  /** Calls held by this member's router. */
  held: number;
  /** Partitions of the ring whose target is not yet their serving owner. */
  moving: number;
  mapVersion: number;
  members: number;
}

/** A member of an app's ring. Created by {@link createRing}. */
export interface Ring extends Closable {
  readonly platform: string;
  readonly app: string;
  readonly nodeId: string;
  /** The ring's KV bucket: `{platform}_{app}_ring`. */
  readonly bucket: string;
  /** Number of partitions (fixed for the life of the ring). */
  readonly partitionCount: number;
  /** The partition of `key` (pure; `InvalidKeyError` when `key` is not a string). */
  partitionOf(key: string): number;
  /**
   * The node serving `key` now according to the ring bucket, or undefined while its partition moves or has
   * no owner. Allocation-free table lookup (no I/O).
   */
  ownerOf(key: string): string | undefined;
  /** True when this node serves `key`'s partition right now (its lease is valid and the hand-off is done). */
  owns(key: string): boolean;
  /** Like {@link Ring.owns} for a partition number (`UnknownPartitionError` when out of range). */
  ownsPartition(partition: number): boolean;
  /** This node's epoch for `partition` while it owns it (also during `onOwn`), else undefined. */
  epochOf(partition: number): Epoch | undefined;
  /** Partitions this node serves now, ascending. */
  partitions(): number[];
  /** Live members. */
  members(): RingMember[];
  /** The partition map as this node sees it. */
  snapshot(): RingSnapshot;
  /**
   * Snapshots on every change (coalesced over 20 ms), the current one first. Resolves once the watcher is
   * live: the current snapshot is queued and every change after the call is delivered (the ring's bucket
   * watch runs since {@link createRing} resolved). On a closed ring it resolves to an ended watcher (the
   * last snapshot, then done).
   *
   * @example
   * for await (const s of await ring.watch()) console.log(s.mapVersion, s.moving.length);
   */
  watch(): Promise<RingWatcher>;
  /** True while this node is the coordinator. */
  isCoordinator(): boolean;
  /** This member's own state (cheap; no I/O). */
  status(): RingStatus;
  /**
   * Pins `partition` to `node` (a live member): the coordinator moves it there and keeps it there while
   * the node lives. `UnknownPartitionError`, `UnknownNodeError` for bad input.
   */
  pin(partition: number, node: string): Promise<void>;
  /** Removes a pin (no-op when there is none). */
  unpin(partition: number): Promise<void>;
  /** Pinned partitions: partition → node. */
  pins(): Record<number, string>;
  /**
   * Key routing for `@gc/rpc` (`createRpcClient(nc, { route: ring.route })`): the serving owner of the key's
   * partition; while it moves, the call is held (bounded by `holdTimeoutMs` and `maxHeldCalls`) and
   * released to the new owner. Returns undefined for other apps.
   */
  readonly route: RouteHook;
  /** Admission of work for a key (`createRpcServer(nc, { admitKey: ring.admit })`). */
  readonly admit: AdmitHook;
  /** Calls held by this node's router now. */
  readonly held: number;
  /**
   * Leaves politely: stops contending for coordinator, marks this member `leaving`, hands every partition
   * off (bounded by `leaveTimeoutMs`), deletes its member record, stops the watch. Idempotent. A ring does
   * not close by itself: a lost lease makes it join again.
   */
  close(): Promise<void>;
}

/** Options of {@link openRingObserver}. */
export interface RingObserverOptions {
  /** Platform name. Required. */
  platform: string;
  /** App name. Required. */
  app: string;
  /** Timeout of one KV operation in ms. Default 5000. */
  opTimeoutMs: number;
  clock: Clock;
  logger: Logger;
}

/** A read-only view of an app's ring (the CLI's `gc ring show`, dashboards, tests): no lease, no partitions. */
export interface RingObserver extends Closable {
  readonly platform: string;
  readonly app: string;
  readonly bucket: string;
  readonly partitionCount: number;
  /** The partition map as seen now. */
  snapshot(): RingSnapshot;
  /**
   * Snapshots on every change (coalesced over 20 ms), the current one first. Resolves once the watcher is
   * live: the current snapshot is queued and every change after the call is delivered (the bucket watch
   * runs since {@link openRingObserver} resolved). Once closed it resolves to an ended watcher.
   *
   * @example
   * for await (const s of await observer.watch()) console.log(s.owners);
   */
  watch(): Promise<RingWatcher>;
  /** The serving owner of `key`, or undefined while its partition moves. */
  ownerOf(key: string): string | undefined;
  partitionOf(key: string): number;
  /** Pins `partition` to a live member (operator action; same checks as {@link Ring.pin}). */
  pin(partition: number, node: string): Promise<void>;
  unpin(partition: number): Promise<void>;
  /** Stops the watch. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createRingRouter}. */
export interface RingRouterOptions {
  /** Platform name. Required. */
  platform: string;
  /** See {@link RingOptions.holdTimeoutMs}. Default 10000. */
  holdTimeoutMs: number;
  /** See {@link RingOptions.maxHeldCalls}. Default 10000. */
  maxHeldCalls: number;
  /** How long an app without a ring bucket is remembered as such (ms); its keys fall back to rendezvous. Default 5000. */
  negativeCacheMs: number;
  /** Timeout of one KV operation in ms. Default 5000. */
  opTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  registry?: Registry;
}

/** Key routing for every ring app of a platform, for a process that is not (or not only) a member. */
export interface RingRouter extends Closable {
  /** The {@link RouteHook} to give `createRpcClient`: owners of ring apps; undefined for other apps. */
  readonly route: RouteHook;
  /** The serving owner of `key` in `app`'s ring, when the app's ring is open here; else undefined. */
  ownerOf(app: string, key: string): string | undefined;
  /** Calls held now. */
  readonly held: number;
  /** Stops every watch; held calls fail with `ClosedError`. Idempotent. */
  close(): Promise<void>;
}
