// What a Locks instance has seen of its bucket: each key's last revision and the monotonic time it was
// first seen (expiry is measured from it), the highest epoch per key, the bucket watch that keeps them
// current, and waits for a key to change.
import { keepWatching, type TimerHandle } from '@gc/core';
import type { QueuedIterator } from '@nats-io/nats-core';
import type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
import { LockStoreError } from './errors.js';
import { parseLockRecord, type Seen } from './records.js';
import type { LockRecord, LocksOptions } from './types.js';

/** The keys of a lock bucket as this instance has seen them, kept current by a watch of the bucket. */
export class LockWatch {
  readonly bucket: string;
  readonly o: LocksOptions;
  readonly kv: KV;
  readonly #seen = new Map<string, Seen>();
  /** Highest epoch this instance saw per key: a key deleted behind gc's back does not restart epochs here. */
  readonly #highEpoch = new Map<string, number>();
  readonly #waiters = new Map<string, Set<() => void>>();
  #watchStop: (() => void) | undefined;

  constructor(kv: KV, o: LocksOptions) {
    this.kv = kv;
    this.o = o;
    this.bucket = o.bucket;
  }

  /** Sets up the bucket watch before returning, so no change after `createLocks` resolves is missed. */
  async start(): Promise<void> {
    let first: QueuedIterator<KvWatchEntry> | undefined;
    try {
      first = await this.kv.watch();
    } catch (err) {
      throw new LockStoreError('watch', this.bucket, { cause: err });
    }
    // While no watch runs (bucket deleted, connection closed), waiters still wake on their timers.
    this.#watchStop = keepWatching(
      first,
      () => this.kv.watch(),
      (e) => void this.observeEntry(e),
      { clock: this.o.clock, logger: this.o.logger, what: 'lock watch', fields: { bucket: this.bucket } },
    );
  }

  observeEntry(e: KvEntry): Seen {
    const record = e.operation === 'PUT' ? parseLockRecord(e.value) : null;
    return this.observe(e.key, e.revision, record);
  }

  observe(key: string, revision: number, record: LockRecord | null): Seen {
    if (record && record.epoch > (this.#highEpoch.get(key) ?? 0)) this.#highEpoch.set(key, record.epoch);
    const prev = this.#seen.get(key);
    if (prev && prev.revision >= revision) return prev;
    const s: Seen = { revision, at: this.o.clock.now(), record };
    this.#seen.set(key, s);
    const ws = this.#waiters.get(key);
    if (ws) for (const w of [...ws]) w();
    return s;
  }

  seen(key: string): Seen | undefined {
    return this.#seen.get(key);
  }

  /** Highest epoch seen for `key`, if any. */
  highEpoch(key: string): number | undefined {
    return this.#highEpoch.get(key);
  }

  /** Resolves when any of `keys` moves past the revision in `revisions`, or at monotonic `until`. */
  waitForChange(
    keys: string[],
    revisions: Map<string, number>,
    until: number,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve) => {
      const t: { handle?: TimerHandle } = {};
      const done = () => {
        for (const k of keys) this.#waiters.get(k)?.delete(done);
        if (t.handle) this.o.clock.clearTimeout(t.handle);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      for (const k of keys) {
        if ((this.#seen.get(k)?.revision ?? 0) > (revisions.get(k) ?? 0)) return resolve();
      }
      for (const k of keys) {
        let set = this.#waiters.get(k);
        if (!set) this.#waiters.set(k, (set = new Set()));
        set.add(done);
      }
      signal?.addEventListener('abort', done);
      t.handle = this.o.clock.setTimeout(done, Math.max(0, until - this.o.clock.now()));
    });
  }

  /** Stops the watch and wakes every waiter (the Locks instance is closing). */
  stop(): void {
    this.#watchStop?.();
    for (const ws of this.#waiters.values()) for (const w of [...ws]) w();
  }
}
