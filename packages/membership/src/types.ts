import type { Closable, Clock, Logger } from '@gc/core';
import type { Registry } from 'prom-client';

/** Node labels: `zone=eu-1`, `disk=ssd`. Keys are tokens; values are strings of at most 256 characters. */
export type Labels = Record<string, string>;

/** The JSON record of one node under key `{nodeId}` in `{platform}_membership`. Schema version 1. */
export interface MemberRecord {
  /** Schema version (1). */
  v: 1;
  nodeId: string;
  /** Random id of the running process (tells a restarted node or a duplicate node id apart). */
  instance: string;
  labels: Labels;
  /** Apps this node runs. */
  apps: string[];
  /** Software version the node runs. */
  version: string;
  /** Wall-clock ms since the Unix epoch when the node started (display only). */
  startedAt: number;
  /** Wall-clock ms of the last heartbeat (display only: liveness is decided on revisions, see README). */
  heartbeatAt: number;
  /** The node's heartbeat interval in ms. */
  heartbeatMs: number;
  /** After this many ms without a new revision observers report the node as gone (its `failAfterMs`). */
  failAfterMs: number;
}

/** A member as this observer sees it. */
export interface Member extends MemberRecord {
  /** KV revision of the record. */
  revision: number;
  /** True for this node's own record. */
  self: boolean;
  /** Ms since this observer saw the record's revision change (on its monotonic clock). */
  sinceHeartbeatMs: number;
}

/** Why a member left: `left` (closed politely) or `expired` (no heartbeat within `failAfterMs`: crashed or cut off). */
export type LeaveReason = 'left' | 'expired';

/** A change in the membership. */
export type MembershipEvent =
  | { type: 'join'; member: Member }
  | { type: 'leave'; member: Member; reason: LeaveReason }
  | { type: 'update'; member: Member; previous: Member };

/** Async iterable of membership events; `stop()` ends it. */
export interface MembershipWatcher extends AsyncIterable<MembershipEvent> {
  stop(): void;
}

/** Options of {@link createMembership}. */
export interface MembershipOptions {
  /** Platform name; the bucket is `{platform}_membership`. Required. */
  platform: string;
  /** This node's id (a token). Required. */
  nodeId: string;
  /** Node labels. Default `{}`. */
  labels: Labels;
  /** Apps this node runs. Default `[]`. */
  apps: string[];
  /** Software version written in the record. Default `'0.0.0'`. */
  version: string;
  /** Heartbeat interval in ms. Default 1000. Minimum 50. */
  heartbeatMs: number;
  /**
   * Written into this node's record: when its revision has not changed for this long, on an observer's
   * monotonic clock, observers report the node as left (`expired`). Each member declares its own (like a
   * lock holder declares its TTL). Default `3 × heartbeatMs`; must be at least `2 × heartbeatMs`.
   */
  failAfterMs: number;
  /**
   * Per-key TTL of this node's record on servers that have it (2.11+), in ms, rounded up to whole seconds: a
   * backstop that removes a crashed node's record when no observer runs. Kept above `failAfterMs` (observers
   * decide first) and above a short server restart (records are not dropped by one). Default
   * `max(2 × failAfterMs, 5000)`; must be ≥ `failAfterMs` and ≥ 1000.
   */
  serverTtlMs: number;
  /**
   * After this observer's connection comes back (its link dropped, or the server restarted), how much longer
   * than `failAfterMs` every member gets before it can be reported gone: the others were cut off too, and a
   * NATS client retries its connection only every `reconnectTimeWait` (2 s in nats.js, plus jitter), so they
   * may be back that much later than this observer. Default 2500; 0 gives them `failAfterMs` only.
   */
  reconnectGraceMs: number;
  /** Observe only: do not write a record for this node (the CLI). Default false. */
  observeOnly: boolean;
  /** Replicas of the bucket when gc creates it (1, 3 or 5). Default 1. */
  replicas: number;
  /** Timeout of one KV operation in ms. Default `max(1000, heartbeatMs)`. */
  opTimeoutMs: number;
  /** Clock for every timing decision. Default `realClock`. */
  clock: Clock;
  /** Logger. Default silent. */
  logger: Logger;
  /** Prometheus registry for `gc_membership_*` metrics. Default none. */
  registry?: Registry;
}

/** Membership of one platform, as seen (and joined) by one node. */
export interface Membership extends Closable {
  readonly bucket: string;
  readonly nodeId: string;
  /** True when the server removes records by per-key TTL as well (nats-server ≥ 2.11). */
  readonly perKeyTtl: boolean;
  /** Live members (including this node unless `observeOnly`), sorted by node id. */
  members(): Promise<Member[]>;
  /** One live member, or undefined. */
  member(nodeId: string): Promise<Member | undefined>;
  /**
   * Join/leave/update events. With `initial` (default true) the current members come first as `join`s.
   * Heartbeats alone are not events. Resolves once the watcher is live: the current members are queued and
   * every change after the call is delivered (the bucket watch runs since {@link createMembership}
   * resolved). On a closed membership it resolves to an ended watcher.
   *
   * @example
   * for await (const e of await m.watch()) console.log(e.type, e.member.nodeId);
   */
  watch(opts?: { initial?: boolean }): Promise<MembershipWatcher>;
  /** Replaces this node's labels (written at once). */
  updateLabels(labels: Labels): Promise<void>;
  /** Replaces the list of apps this node runs (written at once). */
  updateApps(apps: string[]): Promise<void>;
  /** Stops heartbeats, deletes this node's record at once (others see `leave` / `left`), ends watchers. Idempotent. */
  close(): Promise<void>;
}
