// Leases (held locks and permits) and semaphores.
import type { TimerHandle } from '@gc/core';
import {
  LockLostError,
  LockNotHeldError,
  LockStoreError,
  NotLockOwnerError,
  PermitsMismatchError,
} from './errors.js';
import type { LocksImpl } from './locks.js';
import { Conflict, dec, enc, isConflict, parseLockRecord } from './records.js';
import type { AcquireOptions, Lease, LockInfo, LockRecord, Semaphore } from './types.js';

/** A counting semaphore: `permits` lock keys `{name}.{slot}`, any free one taken. */
export class SemaphoreImpl implements Semaphore {
  readonly name: string;
  readonly permits: number;
  readonly #locks: LocksImpl;
  #checked = false;

  constructor(locks: LocksImpl, name: string, permits: number) {
    this.#locks = locks;
    this.name = name;
    this.permits = permits;
  }

  get #slots(): Array<{ slot: number; key: string }> {
    return Array.from({ length: this.permits }, (_, i) => ({ slot: i, key: `${this.name}.${i}` }));
  }

  /** Stores the permit count on first use; refuses a different count than the stored one. */
  async #check(): Promise<void> {
    if (this.#checked) return;
    const key = `${this.name}.permits`;
    const kv = this.#locks.kv;
    try {
      await kv.create(key, enc.encode(JSON.stringify({ permits: this.permits })));
    } catch (err) {
      if (!isConflict(err)) throw new LockStoreError(`create ${key}`, this.#locks.bucket, { cause: err });
      const e = await this.#locks.get(key);
      let stored = NaN;
      try {
        stored = e ? Number((JSON.parse(dec.decode(e.value)) as { permits?: unknown }).permits) : NaN;
      } catch {
        // a value gc did not write: reported as a mismatch below
      }
      if (stored !== this.permits) throw new PermitsMismatchError(this.name, this.permits, stored);
    }
    this.#checked = true;
  }

  async acquire(opts?: Partial<AcquireOptions>): Promise<Lease> {
    const a = this.#locks.resolveAcquire(opts);
    await this.#check();
    return (await this.#locks.acquireKeys(this.name, this.#slots, a, true)) as Lease;
  }

  async tryAcquire(opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<Lease | null> {
    const a = this.#locks.resolveAcquire({ ...opts, waitMs: 0 });
    await this.#check();
    return this.#locks.acquireKeys(this.name, this.#slots, a, false);
  }

  holders(): Promise<LockInfo[]> {
    return this.#locks.holders(`${this.name}.*`);
  }
}

/** A held lock or permit: renewed in the background, fenced by its epoch, released once. */
export class LeaseImpl implements Lease {
  readonly name: string;
  readonly slot: number | undefined;
  readonly key: string;
  readonly owner: string;
  readonly epoch: number;
  readonly ttlMs: number;
  readonly token: string;
  readonly #locks: LocksImpl;
  readonly #abort = new AbortController();
  #record: LockRecord;
  #revision: number;
  /** Monotonic time the last successful write was sent. */
  #lastGoodSentAt: number;
  #renewTimer: TimerHandle | undefined;
  #deadlineTimer: TimerHandle | undefined;
  #state: 'held' | 'released' | 'lost' = 'held';
  #lostTo: string | undefined;
  #busy: Promise<void> = Promise.resolve();

  constructor(
    locks: LocksImpl,
    name: string,
    slot: number | undefined,
    key: string,
    record: LockRecord,
    revision: number,
    sentAt: number,
    autoRenew: boolean,
  ) {
    this.#locks = locks;
    this.name = name;
    this.slot = slot;
    this.key = key;
    this.owner = record.owner;
    this.epoch = record.epoch;
    this.ttlMs = record.ttlMs;
    this.token = record.token;
    this.#record = record;
    this.#revision = revision;
    this.#lastGoodSentAt = sentAt;
    this.#armDeadline();
    if (autoRenew) this.#scheduleRenew();
  }

  get revision(): number {
    return this.#revision;
  }
  get signal(): AbortSignal {
    return this.#abort.signal;
  }
  held(): boolean {
    return this.#state === 'held';
  }

  get #renewIntervalMs(): number {
    return Math.max(1, Math.floor(this.ttlMs / 3));
  }
  get #renewDeadlineMs(): number {
    return Math.floor((2 * this.ttlMs) / 3);
  }

  #scheduleRenew(): void {
    const clock = this.#locks.o.clock;
    this.#renewTimer = clock.setTimeout(() => {
      this.#renewTimer = undefined;
      if (this.#state !== 'held') return;
      this.refresh()
        .catch((err: unknown) => {
          if (this.#state === 'held')
            this.#locks.o.logger.warn('lock refresh failed', { key: this.key, err });
        })
        .finally(() => {
          if (this.#state === 'held') this.#scheduleRenew();
        });
    }, this.#renewIntervalMs);
  }

  #armDeadline(): void {
    const clock = this.#locks.o.clock;
    if (this.#deadlineTimer) clock.clearTimeout(this.#deadlineTimer);
    const at = this.#lastGoodSentAt + this.#renewDeadlineMs;
    this.#deadlineTimer = clock.setTimeout(
      () => {
        this.#deadlineTimer = undefined;
        if (this.#state !== 'held') return;
        // Timers may fire a little early against the monotonic clock: re-arm until the deadline has passed.
        if (clock.now() < at) return this.#armDeadline();
        this.#lose(`no successful refresh within ${this.#renewDeadlineMs} ms (2/3 of the TTL)`);
      },
      Math.max(0, at - clock.now()),
    );
  }

  #stopTimers(): void {
    const clock = this.#locks.o.clock;
    if (this.#renewTimer) clock.clearTimeout(this.#renewTimer);
    if (this.#deadlineTimer) clock.clearTimeout(this.#deadlineTimer);
    this.#renewTimer = this.#deadlineTimer = undefined;
  }

  #lose(reason: string, holder?: string): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#lostTo = holder;
    this.#stopTimers();
    this.#locks.leases.delete(this);
    this.#locks.metrics.held(-1);
    this.#locks.metrics.lost();
    const err = new LockLostError(this.key, this.epoch, reason);
    this.#locks.o.logger.warn('lock lost', { key: this.key, epoch: this.epoch, reason });
    this.#locks.emit({ type: 'lost', key: this.key, owner: this.owner, epoch: this.epoch, reason });
    this.#abort.abort(err);
  }

  /** Serializes refresh and release of this lease. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(fn);
    this.#busy = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #explainConflict(): Promise<void> {
    // Only an explanation for the loss being reported: without the record, the plain conflict is reported.
    const e = await this.#locks.get(this.key).catch(() => null);
    const rec = e && e.operation === 'PUT' ? parseLockRecord(e.value) : null;
    if (rec?.released?.forced && rec.token === this.token) {
      this.#lose(`force-released by ${rec.released.by}: ${rec.released.reason}`, rec.released.by);
    } else {
      this.#lose(
        rec
          ? `the record changed: now ${rec.state} by ${rec.owner} at epoch ${rec.epoch}`
          : 'the record was deleted',
        rec?.owner,
      );
    }
  }

  refresh(): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'lost') throw new LockLostError(this.key, this.epoch, 'lost earlier');
      if (this.#state === 'released') throw new LockNotHeldError(this.key);
      const clock = this.#locks.o.clock;
      const sentAt = clock.now();
      const record: LockRecord = { ...this.#record, refreshedAt: clock.wallNow() };
      try {
        const rev = await this.#locks.write(this.key, record, this.#revision);
        if (this.#state !== 'held') return;
        this.#revision = rev;
        this.#record = record;
        this.#lastGoodSentAt = sentAt;
        this.#armDeadline();
      } catch (err) {
        if (err instanceof Conflict) {
          await this.#explainConflict();
          throw new LockLostError(this.key, this.epoch, 'the record changed under a refresh');
        }
        throw err;
      }
    });
  }

  release(): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'released') return;
      if (this.#state === 'lost') {
        throw new NotLockOwnerError(this.key, this.owner, this.#lostTo, `lease epoch ${this.epoch} was lost`);
      }
      const free: LockRecord = {
        ...this.#record,
        state: 'free',
        released: { by: this.owner, reason: 'released', at: this.#locks.o.clock.wallNow(), forced: false },
      };
      try {
        await this.#locks.write(this.key, free, this.#revision);
      } catch (err) {
        if (err instanceof Conflict) {
          await this.#explainConflict();
          throw new NotLockOwnerError(
            this.key,
            this.owner,
            this.#lostTo,
            `lease epoch ${this.epoch} was lost`,
          );
        }
        throw err;
      }
      this.#state = 'released';
      this.#stopTimers();
      this.#locks.leases.delete(this);
      this.#locks.metrics.held(-1);
      this.#locks.emit({ type: 'released', key: this.key, owner: this.owner, epoch: this.epoch });
      this.#abort.abort(new LockNotHeldError(this.key));
    });
  }

  /** Release for close/dispose: a lost lease is logged, not thrown. */
  async releaseQuietly(): Promise<void> {
    try {
      await this.release();
    } catch (err) {
      if (err instanceof NotLockOwnerError) {
        this.#locks.o.logger.info('lease already lost at release', { key: this.key, epoch: this.epoch });
        return;
      }
      throw err;
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.releaseQuietly();
  }
}
