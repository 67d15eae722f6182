// The storage port of the election: one lease key with compare-and-set writes, a watch and liveness probes.
// Implemented on NATS KV by kv-store.ts and in process (tests, simulation) by memory-store.ts.
import type { Closable } from '@gc/core';
import type { LeaseRecord } from './types.js';

/**
 * One observation of the lease key: its revision and record (null when deleted, purged or expired, and with
 * revision 0 when the key has no entry at all).
 */
export interface LeaseEntry {
  revision: number;
  record: LeaseRecord | null;
  /**
   * Epoch carried by a deletion that a holder wrote when it stepped down (the release record), else
   * undefined. A deletion without it was written by nobody in the election (a server marker, a KV purge or
   * delete by an operator) and may hide a grant that was never observed.
   */
  releasedEpoch?: number;
}

/** Answer of a liveness probe. `absent`: nobody answers (no responders). */
export type ProbeResult = { kind: 'alive'; epoch: number } | { kind: 'absent' } | { kind: 'unknown' };

/**
 * The storage port of the election: a single key with compare-and-set writes. The NATS KV implementation
 * is {@link openKvLeaseStore}; {@link MemoryLeaseBackend} is an in-process implementation with the same
 * CAS semantics for fake-clock unit tests (a shared contract test runs against both).
 */
export interface LeaseStore extends Closable {
  /** Human-readable location, for messages. */
  readonly name: string;
  /** The current entry, or null when the key has no entry at all. */
  get(timeoutMs: number): Promise<LeaseEntry | null>;
  /**
   * Writes `record` if the key's last revision is `expectedRevision` (0: the key has no entry). Returns the
   * new revision; throws {@link LeaseConflictError} when the revision differs. The write carries no per-key
   * TTL: the server never expires a lease (see the README, "Why the lease has no per-key TTL").
   */
  put(record: LeaseRecord, expectedRevision: number, timeoutMs: number): Promise<number>;
  /** Deletes the key if its revision is `expectedRevision`; the deletion carries `record` (epoch high-water). */
  delete(expectedRevision: number, record: LeaseRecord, timeoutMs: number): Promise<void>;
  /** Calls `onEntry` for the current entry and every change until the returned function is called. */
  watch(onEntry: (e: LeaseEntry) => void, onError: (err: Error) => void): () => void;
  /** Answers liveness probes with `epoch` until the returned function is called. */
  serveLiveness(epoch: () => number): () => void;
  /** Probes the holder's liveness. */
  probe(timeoutMs: number): Promise<ProbeResult>;
  /**
   * Calls `listener` each time this node's link to the store comes back (the NATS connection reconnected,
   * for example after a server restart) until the returned function is called.
   */
  onReconnect(listener: () => void): () => void;
  /** Releases watches and subscriptions. Idempotent. */
  close(): Promise<void>;
}
