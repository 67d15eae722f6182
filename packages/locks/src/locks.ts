// createLocks and the Locks of one owner in a bucket: acquire (locks and semaphore permits), release, info,
// holders, force-release and close. Leases and semaphores are in lease.ts; what this instance has seen of
// the bucket is in watch.ts.
import { nuid, type NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import {
  checkInteger,
  ClosedError,
  ClosableResource,
  ConfigError,
  ErrorCode,
  GcError,
  validateToken,
} from '@gc/core';
import {
  LockNotHeldError,
  LockStoreError,
  LockTimeoutError,
  NotLockOwnerError,
  PermitsMismatchError,
} from './errors.js';
import { LeaseImpl, SemaphoreImpl } from './lease.js';
import { MAX_PERMITS, MIN_TTL_MS, resolveLocksOptions } from './options.js';
import { Conflict, enc, isConflict, parseLockRecord, splitKey } from './records.js';
import { lockMetrics, type LockMetrics } from './metrics.js';
import { LockWatch } from './watch.js';
import type {
  AcquireOptions,
  Lease,
  LockEvent,
  LockInfo,
  LockRecord,
  Locks,
  LocksOptions,
  Semaphore,
  SemaphoreOptions,
} from './types.js';

type Attempt = { lease: LeaseImpl } | { retry: true } | { busyUntil: number; holder: string };

/**
 * Opens the lock bucket (creating it when missing) and returns the {@link Locks} of `owner` in it.
 *
 * Expiry: a contender treats a holder as crashed only when the lock's revision has not changed for one
 * full TTL, measured on the contender's own monotonic clock since it first saw that revision; it then takes
 * the lock over with a compare-and-set. No wall clocks, no per-key TTL (works on nats-server 2.10). A holder
 * refreshes every TTL/3 and considers its lease lost when no refresh succeeded within 2·TTL/3 of sending
 * the last good one, so it stops before anyone can take over (tolerates a 1.5× clock-rate difference).
 *
 * @example
 * const locks = await createLocks(nc, { bucket: resourceNames('prod').app('orders').locks, owner: 'node-a' });
 * const lease = await locks.acquire('nightly-report', { ttlMs: 5000, waitMs: 10_000 });
 * try { fence.check(lease.epoch, 'report'); await run(lease.signal); } finally { await lease.release(); }
 */
export async function createLocks(
  nc: NatsConnection,
  opts: Partial<LocksOptions> & Pick<LocksOptions, 'bucket' | 'owner'>,
): Promise<Locks> {
  const o = resolveLocksOptions(opts);
  const js = jetstream(nc, { timeout: o.opTimeoutMs });
  const kvm = new Kvm(js);
  let kv: KV;
  try {
    kv = await kvm.create(o.bucket, { history: 1, replicas: o.replicas });
  } catch (err) {
    // An existing bucket created with other settings (replicas, history) is used as it is.
    try {
      kv = await kvm.open(o.bucket);
      await kv.status();
    } catch {
      throw new LockStoreError('open', o.bucket, { cause: err });
    }
  }
  const impl = new LocksImpl(kv, o);
  await impl.start();
  return impl;
}

export class LocksImpl extends ClosableResource implements Locks {
  readonly bucket: string;
  readonly owner: string;
  readonly instance = nuid.next();
  readonly o: LocksOptions;
  readonly kv: KV;
  readonly metrics: LockMetrics;
  readonly leases = new Set<LeaseImpl>();
  readonly #semaphores = new Map<string, SemaphoreImpl>();
  readonly #watch: LockWatch;
  #closed = false;

  constructor(kv: KV, o: LocksOptions) {
    super();
    this.kv = kv;
    this.o = o;
    this.bucket = o.bucket;
    this.owner = o.owner;
    this.#watch = new LockWatch(kv, o);
    this.metrics = lockMetrics(o.registry, { bucket: o.bucket, owner: o.owner });
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Starts the bucket watch (see {@link LockWatch.start}). */
  start(): Promise<void> {
    return this.#watch.start();
  }

  emit(event: LockEvent): void {
    try {
      this.o.onEvent?.(event);
    } catch (err) {
      this.o.logger.error('lock onEvent callback threw', { err, event: event.type });
    }
  }

  checkOpen(what: string): void {
    if (this.#closed) throw new ClosedError(`locks ${this.bucket} (${what})`);
  }

  async get(key: string): Promise<KvEntry | null> {
    try {
      return await this.kv.get(key);
    } catch (err) {
      throw new LockStoreError(`get ${key}`, this.bucket, { cause: err });
    }
  }

  /** Writes `record` if the key's last revision is `expected` (0: no entry); throws Conflict otherwise. */
  async write(key: string, record: LockRecord, expected: number): Promise<number> {
    try {
      const data = enc.encode(JSON.stringify(record));
      const rev =
        expected === 0 ? await this.kv.create(key, data) : await this.kv.update(key, data, expected);
      this.#watch.observe(key, rev, record);
      return rev;
    } catch (err) {
      if (isConflict(err)) throw new Conflict(key);
      throw new LockStoreError(`write ${key}`, this.bucket, { cause: err });
    }
  }

  resolveAcquire(opts: Partial<AcquireOptions> = {}): AcquireOptions {
    const ttlMs = checkInteger('acquire.ttlMs', opts.ttlMs ?? this.o.ttlMs, MIN_TTL_MS);
    const waitMs = checkInteger('acquire.waitMs', opts.waitMs ?? this.o.waitMs, 0);
    return {
      ttlMs,
      waitMs,
      autoRenew: opts.autoRenew ?? this.o.autoRenew,
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
  }

  /** One try to take `key`. */
  async attempt(name: string, slot: number | undefined, key: string, a: AcquireOptions): Promise<Attempt> {
    const e = await this.get(key);
    const seen = e ? this.#watch.observeEntry(e) : undefined;
    const current = e && e.operation === 'PUT' ? parseLockRecord(e.value) : null;
    let tookOver: { owner: string; epoch: number } | undefined;
    if (e && e.operation === 'PUT' && current?.state !== 'free') {
      // Held (or a value gc cannot read, treated as held with this instance's TTL).
      const ttlMs = current?.ttlMs || a.ttlMs;
      const since = seen && seen.revision === e.revision ? seen.at : this.o.clock.now();
      const expiresAt = since + ttlMs;
      if (this.o.clock.now() < expiresAt) return { busyUntil: expiresAt, holder: current?.owner ?? '?' };
      tookOver = { owner: current?.owner ?? '?', epoch: current?.epoch ?? 0 };
      this.o.logger.info('lock holder expired; taking over', {
        key,
        holder: tookOver.owner,
        epoch: tookOver.epoch,
      });
    }
    const wall = this.o.clock.wallNow();
    const record: LockRecord = {
      v: 1,
      state: 'held',
      epoch: Math.max(current?.epoch ?? 0, this.#watch.highEpoch(key) ?? 0) + 1,
      owner: this.owner,
      instance: this.instance,
      token: nuid.next(),
      ttlMs: a.ttlMs,
      acquiredAt: wall,
      refreshedAt: wall,
    };
    const sentAt = this.o.clock.now();
    let revision: number;
    try {
      revision = await this.write(key, record, e ? e.revision : 0);
    } catch (err) {
      if (err instanceof Conflict) return { retry: true };
      throw err;
    }
    const lease = new LeaseImpl(this, name, slot, key, record, revision, sentAt, a.autoRenew);
    this.leases.add(lease);
    this.metrics.held(1);
    this.emit({
      type: 'acquired',
      key,
      owner: this.owner,
      epoch: record.epoch,
      ...(tookOver ? { tookOver } : {}),
    });
    return { lease };
  }

  /** Tries `slots` (keys) until one is granted; waits when `wait` and all are busy. */
  async acquireKeys(
    name: string,
    slots: Array<{ slot: number | undefined; key: string }>,
    a: AcquireOptions,
    wait: boolean,
  ): Promise<Lease | null> {
    this.checkOpen('acquire');
    const clock = this.o.clock;
    const started = clock.now();
    const deadline = started + (wait ? a.waitMs : 0);
    for (;;) {
      if (a.signal?.aborted) {
        throw new GcError(ErrorCode.Aborted, `acquire of lock ${name} aborted`, { cause: a.signal.reason });
      }
      this.checkOpen('acquire');
      let earliest = Infinity;
      const revisions = new Map<string, number>();
      const holders: string[] = [];
      let retry = false;
      let storeError: LockStoreError | undefined;
      // Start at a random slot so contenders for a semaphore spread over the permits.
      const offset = Math.floor(Math.random() * slots.length);
      for (let i = 0; i < slots.length; i++) {
        const s = slots[(offset + i) % slots.length]!;
        let r: Attempt;
        try {
          r = await this.attempt(name, s.slot, s.key, a);
        } catch (err) {
          // A waiting acquire rides out a store outage (server restart, reconnect) until its deadline.
          if (!(err instanceof LockStoreError) || !wait || clock.now() >= deadline) throw err;
          this.o.logger.debug('lock store unavailable while waiting; retrying', { key: s.key, err });
          storeError = err;
          earliest = Math.min(earliest, clock.now() + this.o.pollIntervalMs);
          revisions.set(s.key, this.#watch.seen(s.key)?.revision ?? 0);
          continue;
        }
        if ('lease' in r) {
          this.metrics.acquired((clock.now() - started) / 1000, 'acquired');
          return r.lease;
        }
        if ('retry' in r) {
          retry = true;
          continue;
        }
        earliest = Math.min(earliest, r.busyUntil);
        holders.push(r.holder);
        revisions.set(s.key, this.#watch.seen(s.key)?.revision ?? 0);
      }
      if (retry) continue;
      const now = clock.now();
      if (now >= deadline) {
        if (!wait) {
          this.metrics.acquired((now - started) / 1000, 'busy');
          return null;
        }
        this.metrics.acquired((now - started) / 1000, 'timeout');
        if (storeError) throw storeError;
        throw new LockTimeoutError(name, a.waitMs, holders);
      }
      await this.#watch.waitForChange(
        slots.map((s) => s.key),
        revisions,
        Math.min(deadline, earliest, now + this.o.pollIntervalMs),
        a.signal,
      );
    }
  }

  async acquire(name: string, opts?: Partial<AcquireOptions>): Promise<Lease> {
    validateToken('lock', name);
    const a = this.resolveAcquire(opts);
    return (await this.acquireKeys(name, [{ slot: undefined, key: name }], a, true)) as Lease;
  }

  async tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<Lease | null> {
    validateToken('lock', name);
    const a = this.resolveAcquire({ ...opts, waitMs: 0 });
    return this.acquireKeys(name, [{ slot: undefined, key: name }], a, false);
  }

  async release(name: string): Promise<void> {
    validateToken('lock', name);
    this.checkOpen('release');
    const e = await this.get(name);
    const rec = e && e.operation === 'PUT' ? parseLockRecord(e.value) : null;
    if (!e || !rec || rec.state === 'free') throw new LockNotHeldError(name);
    if (rec.owner !== this.owner) throw new NotLockOwnerError(name, this.owner, rec.owner);
    const mine = [...this.leases].find((l) => l.key === name && l.token === rec.token);
    if (!mine) {
      throw new NotLockOwnerError(
        name,
        this.owner,
        rec.owner,
        `the grant (epoch ${rec.epoch}) belongs to another process or Locks instance of the same owner`,
      );
    }
    await mine.release();
  }

  semaphore(name: string, opts: SemaphoreOptions): Semaphore {
    validateToken('semaphore', name);
    const permits = checkInteger('semaphore.permits', opts?.permits, 1, MAX_PERMITS);
    const existing = this.#semaphores.get(name);
    if (existing) {
      if (existing.permits !== permits) throw new PermitsMismatchError(name, permits, existing.permits);
      return existing;
    }
    const s = new SemaphoreImpl(this, name, permits);
    this.#semaphores.set(name, s);
    return s;
  }

  toInfo(key: string, e: KvEntry, rec: LockRecord): LockInfo {
    const { name, slot } = splitKey(key);
    const seen = this.#watch.seen(key);
    const info: LockInfo = {
      name,
      ...(slot !== undefined ? { slot } : {}),
      key,
      state: rec.state,
      owner: rec.owner,
      epoch: rec.epoch,
      ttlMs: rec.ttlMs,
      acquiredAt: rec.acquiredAt,
      refreshedAt: rec.refreshedAt,
      revision: e.revision,
      ...(rec.released ? { released: rec.released } : {}),
    };
    if (rec.state === 'held') {
      const since = seen && seen.revision === e.revision ? seen.at : this.o.clock.now();
      info.expiresInMs = Math.max(0, since + rec.ttlMs - this.o.clock.now());
    }
    return info;
  }

  async info(name: string): Promise<LockInfo | null> {
    validateToken('lock', name);
    return this.infoKey(name);
  }

  async infoKey(key: string): Promise<LockInfo | null> {
    const e = await this.get(key);
    if (!e) return null;
    this.#watch.observeEntry(e);
    const rec = e.operation === 'PUT' ? parseLockRecord(e.value) : null;
    return rec ? this.toInfo(key, e, rec) : null;
  }

  async holders(filter = '>'): Promise<LockInfo[]> {
    this.checkOpen('holders');
    const keys: string[] = [];
    try {
      const it = await this.kv.keys(filter);
      for await (const k of it) keys.push(k);
    } catch (err) {
      throw new LockStoreError('list keys', this.bucket, { cause: err });
    }
    const out: LockInfo[] = [];
    for (const k of keys.sort()) {
      if (k.endsWith('.permits')) continue;
      const i = await this.infoKey(k);
      if (i && i.state === 'held') out.push(i);
    }
    return out;
  }

  async forceRelease(name: string, opts: { reason: string; slot?: number }): Promise<LockInfo | null> {
    validateToken('lock', name);
    this.checkOpen('forceRelease');
    if (typeof opts?.reason !== 'string' || opts.reason.trim() === '') {
      throw new ConfigError(
        'forceRelease.reason',
        'a non-empty reason is required: it is recorded with the release',
      );
    }
    const key =
      opts.slot === undefined
        ? name
        : `${name}.${checkInteger('forceRelease.slot', opts.slot, 0, MAX_PERMITS - 1)}`;
    for (;;) {
      const e = await this.get(key);
      const rec = e && e.operation === 'PUT' ? parseLockRecord(e.value) : null;
      if (!e || !rec || rec.state === 'free') return null;
      const before = this.toInfo(key, e, rec);
      const free: LockRecord = {
        ...rec,
        state: 'free',
        released: { by: this.owner, reason: opts.reason, at: this.o.clock.wallNow(), forced: true },
      };
      try {
        await this.write(key, free, e.revision);
      } catch (err) {
        if (err instanceof Conflict) continue;
        throw err;
      }
      this.metrics.forced();
      this.o.logger.warn('lock force-released', {
        key,
        holder: rec.owner,
        epoch: rec.epoch,
        reason: opts.reason,
      });
      this.emit({
        type: 'forced',
        key,
        by: this.owner,
        reason: opts.reason,
        previous: { owner: rec.owner, epoch: rec.epoch },
      });
      return before;
    }
  }

  protected async closeResources(): Promise<void> {
    this.#closed = true;
    const errors: unknown[] = [];
    for (const l of [...this.leases]) {
      try {
        await l.releaseQuietly();
      } catch (err) {
        errors.push(err);
      }
    }
    this.#watch.stop();
    if (errors.length) this.o.logger.warn('locks close: some releases failed', { errors });
  }
}
