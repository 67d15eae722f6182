import type { Closable, Clock, Epoch, Logger } from '@gc/core';
import type { Registry } from 'prom-client';

/**
 * The JSON record stored under each lock key. A key is never deleted by gc: a release writes a `free`
 * record that keeps the epoch, so the next grant's epoch is higher even after a release. Schema version 1.
 */
export interface LockRecord {
  /** Schema version (1). */
  v: 1;
  /** `held` while someone holds the lock, `free` after a release (or a force-release). */
  state: 'held' | 'free';
  /** Fencing epoch of the last grant: strictly increases with every grant of this key. */
  epoch: Epoch;
  /** Owner of the last grant (the holder while `held`). */
  owner: string;
  /** Random id of the `Locks` instance of the holder (tells two processes with the same owner apart). */
  instance: string;
  /** Random id of the grant. */
  token: string;
  /** Time-to-live the holder promised to refresh within, in ms. */
  ttlMs: number;
  /** Wall-clock ms since the Unix epoch of the grant (display only: never used for timing). */
  acquiredAt: number;
  /** Wall-clock ms of the last refresh (display only). */
  refreshedAt: number;
  /** How the last grant ended (on `free` records). */
  released?: LockRelease;
}

/** How a grant ended: who released it and why. */
export interface LockRelease {
  /** Owner that released (the holder, or the operator for a force-release). */
  by: string;
  /** Why (`released` for a normal release; the operator's reason for a force-release). */
  reason: string;
  /** Wall-clock ms of the release. */
  at: number;
  /** True for {@link Locks.forceRelease}. */
  forced: boolean;
}

/** What an observer knows about one lock key. */
export interface LockInfo {
  /** Lock (or semaphore) name. */
  name: string;
  /** Permit slot for semaphores; undefined for a plain lock. */
  slot?: number;
  /** The KV key (`name` or `name.slot`). */
  key: string;
  state: 'held' | 'free';
  /** Holder while held; last holder when free. */
  owner: string;
  epoch: Epoch;
  ttlMs: number;
  acquiredAt: number;
  refreshedAt: number;
  /** KV revision of the record. */
  revision: number;
  /**
   * While held: ms until this observer would treat the holder as crashed (TTL minus the time since this
   * observer first saw the current revision, on its monotonic clock); 0 when it already would.
   */
  expiresInMs?: number;
  released?: LockRelease;
}

/** A granted lock (or semaphore permit). Keep it while using the protected resource; release it after. */
export interface Lease {
  /** Lock or semaphore name. */
  readonly name: string;
  /** Permit slot (semaphores only). */
  readonly slot: number | undefined;
  /** The KV key of the grant. */
  readonly key: string;
  readonly owner: string;
  /**
   * Fencing epoch of this grant: strictly higher than every earlier grant of the same key. Give it to the
   * protected resource (`createFence().check(lease.epoch, what)` from `@gc/core`) so a holder that lost
   * the lock is refused.
   */
  readonly epoch: Epoch;
  /** TTL of the grant in ms. */
  readonly ttlMs: number;
  /** KV revision of the last successful write (grant or refresh). */
  readonly revision: number;
  /** Aborted when the lease is lost or released; `signal.reason` is a `LockLostError` on loss. */
  readonly signal: AbortSignal;
  /** True until the lease is released or lost. */
  held(): boolean;
  /** Refreshes now (auto-renew does it every TTL/3). Throws `LockLostError` when the lock was taken. */
  refresh(): Promise<void>;
  /**
   * Releases with a compare-and-set on the revision: writes a `free` record that keeps the epoch.
   * Idempotent after a release; throws `NotLockOwnerError` when the lease was lost to someone else.
   */
  release(): Promise<void>;
  /** Releases; a lease that was already lost is only logged. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Per-acquire options. */
export interface AcquireOptions {
  /** Lease time-to-live in ms. Default: {@link LocksOptions.ttlMs}. */
  ttlMs: number;
  /** How long `acquire` waits for the lock in ms. Default: {@link LocksOptions.waitMs}. */
  waitMs: number;
  /** Refresh automatically every `ttlMs / 3` while held. Default: {@link LocksOptions.autoRenew}. */
  autoRenew: boolean;
  /** Aborts a waiting acquire. */
  signal?: AbortSignal;
}

/** Options of {@link Locks.semaphore}. */
export interface SemaphoreOptions {
  /** Number of permits (1..1000). Every user of the semaphore must pass the same count. */
  permits: number;
}

/** An N-of-M semaphore: at most `permits` leases at once, each with its own slot and epoch. */
export interface Semaphore {
  readonly name: string;
  readonly permits: number;
  /** Waits for a free permit (see {@link Locks.acquire}). */
  acquire(opts?: Partial<AcquireOptions>): Promise<Lease>;
  /** Takes a free permit or returns null at once. */
  tryAcquire(opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<Lease | null>;
  /** Permits currently held. */
  holders(): Promise<LockInfo[]>;
}

/** Something that happened to a lock, for the platform's audit trail and logs. */
export type LockEvent =
  | { type: 'acquired'; key: string; owner: string; epoch: Epoch; tookOver?: { owner: string; epoch: Epoch } }
  | { type: 'released'; key: string; owner: string; epoch: Epoch }
  | { type: 'lost'; key: string; owner: string; epoch: Epoch; reason: string }
  | { type: 'forced'; key: string; by: string; reason: string; previous: { owner: string; epoch: Epoch } };

/** Options of {@link createLocks}. */
export interface LocksOptions {
  /**
   * KV bucket: `{platform}_{app}_locks` for an app, `{platform}_platform_locks` for platform locks (use
   * `resourceNames(platform)` from `@gc/core`). Created when missing (history 1). Required.
   */
  bucket: string;
  /** Who acquires: usually the node id. Letters, digits, `-`, `_`. Required. */
  owner: string;
  /** Default lease TTL in ms. Default 10000. Minimum 100. */
  ttlMs: number;
  /** Default wait of `acquire` in ms. Default 30000. */
  waitMs: number;
  /** Default auto-renew. Default true. */
  autoRenew: boolean;
  /**
   * Safety-net re-check interval of a waiting acquire in ms, for when the KV watch is interrupted. Waiters
   * are woken by the watch and by the TTL timer, not by this. Default 1000.
   */
  pollIntervalMs: number;
  /** Timeout of one KV operation in ms. Default 5000. */
  opTimeoutMs: number;
  /** Replicas of a bucket gc creates (1, 3 or 5). Default 1. */
  replicas: number;
  /** Clock for every timing decision. Default `realClock`. */
  clock: Clock;
  /** Logger. Default silent. */
  logger: Logger;
  /** Prometheus registry for `gc_locks_*` metrics. Default none. */
  registry?: Registry;
  /** Called for acquisitions, releases, losses and force-releases (for auditing). Must not throw. */
  onEvent?: (event: LockEvent) => void;
}

/** Locks of one bucket, held under one owner. */
export interface Locks extends Closable {
  readonly bucket: string;
  readonly owner: string;
  /**
   * Waits up to `waitMs` for the lock, woken by the KV watch and by the holder's TTL timer. Throws
   * `LockTimeoutError` when the wait runs out, `InvalidNameError` for a bad name.
   */
  acquire(name: string, opts?: Partial<AcquireOptions>): Promise<Lease>;
  /** Takes the lock if it is free (or its holder's TTL ran out); null at once otherwise. */
  tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<Lease | null>;
  /**
   * Releases the lock `name` held by this owner through this instance. Throws `NotLockOwnerError` when
   * someone else holds it, `LockNotHeldError` when it is free.
   */
  release(name: string): Promise<void>;
  /** A semaphore with `permits` slots (keys `name.0` … `name.{permits-1}`, and `name.permits`). */
  semaphore(name: string, opts: SemaphoreOptions): Semaphore;
  /** The record of lock `name` (a plain lock), or null when it was never taken. */
  info(name: string): Promise<LockInfo | null>;
  /** Every held lock and permit in the bucket. */
  holders(): Promise<LockInfo[]>;
  /**
   * Operator action: frees the lock (or one semaphore slot) whoever holds it, recording `by` (this owner)
   * and `reason` in the record. The holder's next refresh fails and it loses the lease. Returns the
   * record before the release, or null when it was not held.
   */
  forceRelease(name: string, opts: { reason: string; slot?: number }): Promise<LockInfo | null>;
  /** Releases every lease still held, stops the watch. Idempotent. */
  close(): Promise<void>;
}
