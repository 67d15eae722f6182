// This member's lease: its member record, written on join and renewed by compare-and-set, the deadline
// after which it stops serving, and losing the lease (then joining again under a new instance).
import { ClosedError, type TimerHandle } from '@gc/core';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nuid, type NatsConnection } from '@nats-io/nats-core';
import { isConflict } from './bucket.js';
import { NodeIdInUseError, RingStoreError } from './errors.js';
import type { RingMetrics } from './metrics.js';
import { encodeJson, parseMemberRecord, type RingNames } from './records.js';
import type { MemberRecord, RingEvent, RingOptions } from './types.js';

/** What the lease uses of its ring member. */
export interface LeaseContext {
  readonly nodeId: string;
  readonly bucket: string;
  readonly kv: KV;
  readonly names: RingNames;
  readonly o: RingOptions;
  readonly metrics: RingMetrics;
  emit(event: RingEvent): void;
  closed(): boolean;
  leaving(): boolean;
  /** Stops serving every partition at once; returns how many were not idle. */
  stopServing(reason: string): number;
  /** The member joined again after losing its lease. */
  rejoined(): void;
}

/** The member lease of one ring member (`members.{nodeId}`). */
export class MemberLease {
  readonly #ctx: LeaseContext;
  /** The bucket again, with a timeout that fits the renew interval: a hung renewal is retried in time. */
  #leaseKv!: KV;
  #instance = nuid.next();
  /** Changes whenever this member loses its lease: async work started under an older one is abandoned. */
  #generation = 0;
  #memberRev = 0;
  #memberRecord!: MemberRecord;
  #joined = false;
  /** Monotonic time until which this member may serve (last good renewal sent + renewDeadlineMs). */
  #deadline = -Infinity;
  #renewTimer: TimerHandle | undefined;
  #deadlineTimer: TimerHandle | undefined;
  #rejoining = false;

  constructor(ctx: LeaseContext) {
    this.#ctx = ctx;
  }

  /** This process's instance id (a new one after each lost lease). */
  get instance(): string {
    return this.#instance;
  }

  get generation(): number {
    return this.#generation;
  }

  get joined(): boolean {
    return this.#joined;
  }

  /** The revision of this member's record. */
  get revision(): number {
    return this.#memberRev;
  }

  /** True while this member may serve. */
  valid(): boolean {
    return this.#ctx.o.clock.now() < this.#deadline;
  }

  remainingMs(): number {
    return Math.max(0, this.#deadline - this.#ctx.o.clock.now());
  }

  /** Opens the bucket for lease writes. */
  async open(nc: NatsConnection): Promise<void> {
    const o = this.#ctx.o;
    const leaseTimeout = Math.max(50, Math.min(o.opTimeoutMs, Math.round(o.renewIntervalMs / 2) * 2));
    this.#leaseKv = await new Kvm(jetstream(nc, { timeout: leaseTimeout })).open(this.#ctx.bucket);
  }

  #record(state: MemberRecord['state']): MemberRecord {
    const wall = this.#ctx.o.clock.wallNow();
    return {
      v: 1,
      nodeId: this.#ctx.nodeId,
      instance: this.#instance,
      weight: this.#ctx.o.weight,
      ttlMs: this.#ctx.o.ttlMs,
      state,
      startedAt: this.#memberRecord?.startedAt ?? wall,
      heartbeatAt: wall,
    };
  }

  /**
   * Writes this member's lease. A record of another live process with this node id (a restart before the
   * old lease expired) is taken over only after its revision stayed unchanged for its TTL on our clock.
   */
  async join(): Promise<void> {
    const { nodeId, bucket, o } = this.#ctx;
    const key = this.#ctx.names.member(nodeId);
    const clock = o.clock;
    const start = clock.now();
    let seen: { revision: number; at: number } | undefined;
    for (;;) {
      if (this.#ctx.closed()) throw new ClosedError(`ring ${bucket}`);
      let e;
      try {
        e = await this.#leaseKv.get(key);
      } catch (err) {
        throw new RingStoreError('read member', bucket, { cause: err });
      }
      const other = e && e.operation === 'PUT' ? parseMemberRecord(e.value) : null;
      if (
        e &&
        other &&
        other.instance !== this.#instance &&
        other.instance !== this.#memberRecord?.instance
      ) {
        if (!seen || seen.revision !== e.revision) seen = { revision: e.revision, at: clock.now() };
        if (clock.now() - seen.at < other.ttlMs) {
          if (clock.now() - start > 3 * Math.max(other.ttlMs, o.ttlMs))
            throw new NodeIdInUseError(nodeId, bucket, clock.now() - start);
          await clock.sleep(Math.min(100, other.ttlMs / 10));
          continue;
        }
        o.logger.info('ring: taking over the expired lease of an earlier process with this node id', {
          nodeId,
          previous: other.instance,
        });
      }
      const record = this.#record(this.#ctx.leaving() ? 'leaving' : 'active');
      const sentAt = clock.now();
      try {
        const rev = e
          ? await this.#leaseKv.update(key, encodeJson(record), e.revision)
          : await this.#leaseKv.create(key, encodeJson(record));
        this.#memberRecord = record;
        this.#memberRev = rev;
        this.#leaseRenewed(sentAt);
        this.#joined = true;
        this.#ctx.emit({ type: 'joined', nodeId, instance: this.#instance, weight: o.weight });
        this.#scheduleRenew();
        return;
      } catch (err) {
        if (!isConflict(err)) throw new RingStoreError('write member', bucket, { cause: err });
      }
    }
  }

  #leaseRenewed(sentAt: number): void {
    const clock = this.#ctx.o.clock;
    this.#deadline = sentAt + this.#ctx.o.renewDeadlineMs;
    if (this.#deadlineTimer) clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = clock.setTimeout(
      () => this.#checkDeadline(),
      Math.max(0, this.#deadline - clock.now()),
    );
  }

  #checkDeadline(): void {
    this.#deadlineTimer = undefined;
    if (this.#ctx.closed() || !this.#joined) return;
    const left = this.#deadline - this.#ctx.o.clock.now();
    if (left <= 0) this.lost('renew-deadline');
    // Timers may fire a fraction of a millisecond early against performance.now(): look again.
    else this.#deadlineTimer = this.#ctx.o.clock.setTimeout(() => this.#checkDeadline(), Math.ceil(left));
  }

  #scheduleRenew(delay = this.#ctx.o.renewIntervalMs): void {
    if (this.#renewTimer) this.#ctx.o.clock.clearTimeout(this.#renewTimer);
    this.#renewTimer = this.#ctx.o.clock.setTimeout(() => {
      this.#renewTimer = undefined;
      void this.#renew();
    }, delay);
  }

  async #renew(state: MemberRecord['state'] = this.#ctx.leaving() ? 'leaving' : 'active'): Promise<void> {
    if (this.#ctx.closed() || !this.#joined) return;
    const record = this.#record(state);
    const sentAt = this.#ctx.o.clock.now();
    const generation = this.#generation;
    try {
      const rev = await this.#leaseKv.update(
        this.#ctx.names.member(this.#ctx.nodeId),
        encodeJson(record),
        this.#memberRev,
      );
      if (generation !== this.#generation || !this.#joined) return;
      this.#memberRev = rev;
      this.#memberRecord = record;
      this.#leaseRenewed(sentAt);
      this.#scheduleRenew();
    } catch (err) {
      if (this.#ctx.closed() || generation !== this.#generation) return;
      if (isConflict(err)) {
        // Our key changed under us: the coordinator expired us (we were cut off for a TTL) or it was deleted.
        this.lost('lease-taken');
      } else {
        this.#ctx.o.logger.warn('ring: lease renewal failed; retrying', { err: (err as Error)?.message });
        this.#scheduleRenew(Math.max(10, Math.round(this.#ctx.o.renewIntervalMs / 4)));
      }
    }
  }

  /** Announces the leave: renews at once with state `leaving`. */
  async announceLeave(): Promise<void> {
    if (this.#renewTimer) this.#ctx.o.clock.clearTimeout(this.#renewTimer);
    await this.#renew('leaving');
  }

  /** Stops serving everything at once and joins again under a new instance. */
  lost(reason: string): void {
    if (!this.#joined) return;
    const { o } = this.#ctx;
    this.#joined = false;
    this.#generation++;
    this.#deadline = -Infinity;
    this.#ctx.metrics.leaseLost();
    const n = this.#ctx.stopServing(`lease lost (${reason})`);
    o.logger.warn('ring: lease lost; stopped serving every partition', { reason, partitions: n });
    this.#ctx.emit({ type: 'lease-lost', reason, partitions: n });
    if (this.#ctx.closed() || this.#ctx.leaving()) return;
    this.#instance = nuid.next();
    if (this.#rejoining) return;
    this.#rejoining = true;
    void (async () => {
      while (!this.#ctx.closed() && !this.#joined) {
        try {
          await this.join();
        } catch (err) {
          if (this.#ctx.closed()) break;
          o.logger.warn('ring: re-joining failed; retrying', { err: (err as Error)?.message });
          // Only a pause before the retry; the loop checks closed().
          await o.clock.sleep(Math.round(o.renewIntervalMs / 2)).catch(() => undefined);
        }
      }
      this.#rejoining = false;
      this.#ctx.rejoined();
    })();
  }

  /** Gives the lease up (the ring closes): stops renewing and deletes the member record. */
  async end(): Promise<void> {
    for (const t of [this.#renewTimer, this.#deadlineTimer]) if (t) this.#ctx.o.clock.clearTimeout(t);
    if (this.#joined) {
      this.#joined = false;
      await this.#ctx.kv
        .delete(this.#ctx.names.member(this.#ctx.nodeId), { previousSeq: this.#memberRev })
        .catch((err: unknown) => {
          this.#ctx.o.logger.warn('ring: could not delete own member record at close', {
            err: (err as Error)?.message,
          });
        });
    }
    this.#generation++;
  }
}
