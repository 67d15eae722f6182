// This member's side of moving partitions: reconciling its local state with the view (records, map,
// members), claiming a partition assigned to it (onOwn, then `owned`) and releasing one assigned elsewhere
// (drain, onRelease, then `released`), with a bound on parallel record writes.
import { withoutStacks, type TimerHandle } from '@gc/core';
import { headers } from '@nats-io/nats-core';
import { isConflict, kvEditSubject } from './bucket.js';
import type { MemberContext } from './context.js';
import type { MemberLease } from './lease.js';
import { L_CLAIMING, L_IDLE, L_OWNING, L_RELEASING, L_SERVING, type LocalPartitions } from './local.js';
import { encodeJson } from './records.js';
import { S_NONE, S_OWNED, S_OWNING, S_RELEASED } from './tables.js';
import type { PartitionRecord, RingOptions } from './types.js';
import type { RingView } from './view.js';

/** What the hand-off uses of its ring member. */
export interface HandoffContext extends MemberContext {
  readonly local: LocalPartitions;
  readonly lease: MemberLease;
  leaving(): boolean;
  /** True once createRing has returned. */
  started(): boolean;
}

/** Claims and releases the partitions of one ring member as the map and the records change. */
export class Handoff {
  readonly #ctx: HandoffContext;
  readonly #o: RingOptions;
  readonly #view: RingView;
  readonly #local: LocalPartitions;
  readonly #lease: MemberLease;
  readonly #dirty = new Set<number>();
  #dirtyAll = true;
  #reconcileTimer: TimerHandle | undefined;
  // Write concurrency.
  #writesInFlight = 0;
  readonly #writeQueue: Array<() => void> = [];

  constructor(ctx: HandoffContext) {
    this.#ctx = ctx;
    this.#o = ctx.o;
    this.#view = ctx.view;
    this.#local = ctx.local;
    this.#lease = ctx.lease;
  }

  /** Stops the reconcile timer (the ring closes). */
  clearTimer(): void {
    if (this.#reconcileTimer) this.#o.clock.clearTimeout(this.#reconcileTimer);
  }

  /** Schedules a reconcile of partition `p` (all partitions when undefined). */
  markDirty(p?: number): void {
    if (p === undefined) this.#dirtyAll = true;
    else this.#dirty.add(p);
    if (this.#reconcileTimer || this.#ctx.closed()) return;
    this.#reconcileTimer = this.#o.clock.setTimeout(() => {
      this.#reconcileTimer = undefined;
      this.#reconcile();
    }, 0);
  }

  #reconcile(): void {
    // Nothing is claimed or released before createRing has returned: the caller wires `ring.admit` into its
    // RPC server only then, and a partition served before that would refuse every call.
    if (this.#ctx.closed() || !this.#ctx.started()) return;
    if (this.#dirtyAll) {
      this.#dirtyAll = false;
      this.#dirty.clear();
      for (let p = 0; p < this.#ctx.partitionCount; p++) this.#reconcileOne(p);
    } else {
      const ps = [...this.#dirty];
      this.#dirty.clear();
      for (const p of ps) this.#reconcileOne(p);
    }
  }

  #reconcileOne(p: number): void {
    if (this.#local.busy.has(p)) return;
    const v = this.#view;
    const l = this.#local.state[p]!;
    const target = v.targetOf(p);
    if (l === L_SERVING || l === L_OWNING) {
      // Someone else holds the record now (we were expired while cut off): stop at once.
      if (
        v.revision[p]! > this.#local.myRev[p]! &&
        (v.instance[p] !== this.#lease.instance || v.epoch[p] !== this.#local.myEpoch[p])
      ) {
        this.#local.drop(p, 'record taken over');
        return;
      }
      if (v.map && target !== this.#ctx.nodeId) void this.#release(p, target);
      else if (this.#ctx.leaving() && this.noOtherActiveMember()) void this.#release(p, undefined);
      return;
    }
    if (
      l !== L_IDLE ||
      target !== this.#ctx.nodeId ||
      this.#ctx.leaving() ||
      !this.#lease.joined ||
      !this.#lease.valid()
    )
      return;
    const s = v.state[p]!;
    const owner = v.recOwner[p]! >= 0 ? v.nodeNames[v.recOwner[p]!]! : undefined;
    const claimable =
      s === S_NONE ||
      s === S_RELEASED ||
      ((s === S_OWNING || s === S_OWNED) &&
        !v.isLive(owner!, v.instance[p]!) &&
        v.instance[p] !== this.#lease.instance);
    if (claimable) void this.#claim(p);
  }

  /** True when no other member is active (the last one leaving releases without a target). */
  noOtherActiveMember(): boolean {
    for (const [id, m] of this.#view.members)
      if (id !== this.#ctx.nodeId && m.record.state === 'active') return false;
    return true;
  }

  async #slot(): Promise<void> {
    if (this.#writesInFlight < this.#o.maxParallelWrites) {
      this.#writesInFlight++;
      return;
    }
    await new Promise<void>((r) => this.#writeQueue.push(r));
  }

  #unslot(): void {
    const next = this.#writeQueue.shift();
    if (next) next();
    else this.#writesInFlight--;
  }

  /** Compare-and-set write of partition `p`'s record (create when `expected` is 0). Returns the revision. */
  async #writeRecord(p: number, rec: PartitionRecord, expected: number): Promise<number> {
    await this.#slot();
    try {
      const key = this.#ctx.names.partition(p);
      const data = encodeJson(rec);
      const rev =
        expected === 0
          ? await withoutStacks(() => this.#ctx.kv.create(key, data))
          : await this.#update(key, data, expected);
      this.#view.applyRecord(p, rec, rev);
      return rev;
    } finally {
      this.#unslot();
    }
  }

  /**
   * `kv.update(key, data, expected)` as one publish to the key's subject that expects the key's last revision,
   * with its ack on the publisher's shared subscription. A hand-off writes thousands of records at once, and
   * nats.js's request per write (a reply subscription entry, a timer and three Error objects, one of them
   * made on every reply just to cancel the settled request) cost a fifth of its time. A lost compare-and-set
   * rejects with the same JetStream code (`isConflict`).
   */
  #update(key: string, data: Uint8Array, expected: number): Promise<number> {
    const h = headers();
    h.set('Nats-Expected-Last-Subject-Sequence', String(expected));
    return this.#ctx.publisher
      .publish(kvEditSubject(this.#ctx.kv, this.#ctx.names.bucket, key), data, h, this.#o.opTimeoutMs)
      .then((ack) => ack.seq);
  }

  async #claim(p: number): Promise<void> {
    const v = this.#view;
    const generation = this.#lease.generation;
    this.#local.busy.add(p);
    this.#local.state[p] = L_CLAIMING;
    const t0 = this.#o.clock.now();
    const prevState = v.state[p]!;
    const prevOwner = v.recOwner[p]! >= 0 ? v.nodeNames[v.recOwner[p]!] : undefined;
    const from = prevOwner;
    const takeover = prevState === S_OWNING || prevState === S_OWNED;
    const epoch = Math.max(v.epoch[p]!, v.highEpoch[p]!) + 1;
    const expected = v.revision[p]!;
    const onOwn = this.#o.onOwn;
    const rec: PartitionRecord = {
      v: 1,
      owner: this.#ctx.nodeId,
      instance: this.#lease.instance,
      epoch,
      state: onOwn ? 'owning' : 'owned',
      at: this.#o.clock.wallNow(),
    };
    let ok = false;
    try {
      let rev: number;
      try {
        rev = await this.#writeRecord(p, rec, prevState === S_NONE && expected === 0 ? 0 : expected);
      } catch (err) {
        if (!isConflict(err))
          this.#o.logger.warn('ring: claim failed', { partition: p, err: (err as Error)?.message });
        return;
      }
      if (generation !== this.#lease.generation) return;
      this.#local.myEpoch[p] = epoch;
      this.#local.myRev[p] = rev;
      this.#ctx.emit({ type: 'own-start', partition: p, epoch, from, takeover });
      const ac = new AbortController();
      this.#local.ownAbort.set(p, ac);
      if (onOwn) {
        this.#local.state[p] = L_OWNING;
        const done = await this.#runOnOwn(p, epoch, from, ac, generation);
        if (generation !== this.#lease.generation || this.#local.state[p] !== L_OWNING) return;
        if (!done) {
          // The target moved away while onOwn kept failing: hand the partition on without serving it.
          ok = true;
          return;
        }
        // Serve before the `owned` record is visible, so a caller that sees it is admitted.
        this.#local.state[p] = L_SERVING;
        try {
          const r2 = await this.#writeRecord(p, { ...rec, state: 'owned', at: this.#o.clock.wallNow() }, rev);
          if (generation !== this.#lease.generation) return;
          this.#local.myRev[p] = r2;
        } catch (err) {
          if (generation !== this.#lease.generation) return;
          this.#o.logger.warn('ring: could not mark a partition owned; dropping it', {
            partition: p,
            err: (err as Error)?.message,
          });
          this.#local.drop(p, 'owned write failed');
          return;
        }
      } else {
        this.#local.state[p] = L_SERVING;
      }
      ok = true;
      const tookMs = this.#o.clock.now() - t0;
      this.#ctx.metrics.handoff('own', tookMs / 1000);
      this.#ctx.emit({ type: 'owned', partition: p, epoch, tookMs });
      this.#local.updateOwnedMetric();
    } finally {
      if (generation === this.#lease.generation) {
        if (!ok && this.#local.state[p] === L_CLAIMING) this.#local.state[p] = L_IDLE;
        this.#local.busy.delete(p);
        this.markDirty(p);
      }
    }
  }

  /** Runs onOwn until it succeeds (true), or returns false when the partition's target moved away. */
  async #runOnOwn(
    p: number,
    epoch: number,
    from: string | undefined,
    ac: AbortController,
    generation: number,
  ): Promise<boolean> {
    const clock = this.#o.clock;
    for (let attempt = 1; ; attempt++) {
      const timeout = new AbortController();
      const timer = clock.setTimeout(
        () => timeout.abort(new Error(`onOwn did not finish within ${this.#o.ownTimeoutMs} ms`)),
        this.#o.ownTimeoutMs,
      );
      const signal = AbortSignal.any([ac.signal, timeout.signal]);
      try {
        await Promise.race([
          Promise.resolve().then(() => this.#o.onOwn!(p, { epoch, signal, from })),
          new Promise<never>((_, reject) => {
            signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
          }),
        ]);
        return true;
      } catch (err) {
        if (generation !== this.#lease.generation || ac.signal.aborted) return false;
        const error = err instanceof Error ? err : new Error(String(err));
        this.#o.logger.warn('ring: onOwn failed; retrying', { partition: p, attempt, err: error.message });
        this.#ctx.emit({ type: 'own-failed', partition: p, epoch, attempt, error });
      } finally {
        clock.clearTimeout(timer);
      }
      if (this.#view.targetOf(p) !== this.#ctx.nodeId || this.#ctx.closed() || this.#ctx.leaving())
        return false;
      // Aborted: the next line checks the signal.
      await clock.sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7)), ac.signal).catch(() => undefined);
      if (generation !== this.#lease.generation || ac.signal.aborted) return false;
    }
  }

  async #release(p: number, to: string | undefined): Promise<void> {
    const clock = this.#o.clock;
    const generation = this.#lease.generation;
    this.#local.busy.add(p);
    this.#local.state[p] = L_RELEASING;
    this.#local.updateOwnedMetric();
    const epoch = this.#local.myEpoch[p]!;
    const t0 = clock.now();
    const deadline = t0 + this.#o.releaseTimeoutMs;
    this.#ctx.emit({ type: 'release-start', partition: p, epoch, to, inFlight: this.#local.inflight[p]! });
    this.#local.ownAbort.get(p)?.abort(new Error(`partition ${p} is being handed off`));
    this.#local.ownAbort.delete(p);
    let timedOut = false;
    try {
      // 1. Drain: new calls are refused (callers hold them); wait for the ones in flight.
      if (this.#local.inflight[p]! > 0) {
        const drained = new Promise<void>((resolve) => this.#local.drains.set(p, resolve));
        const t = clock.setTimeout(() => this.#local.drains.get(p)?.(), Math.max(0, deadline - clock.now()));
        await drained;
        clock.clearTimeout(t);
        this.#local.drains.delete(p);
        if (this.#local.inflight[p]! > 0) timedOut = true;
      }
      const drainMs = clock.now() - t0;
      if (generation !== this.#lease.generation) return;
      // 2. onRelease, bounded by the deadline.
      if (this.#o.onRelease) {
        const ac = new AbortController();
        const t = clock.setTimeout(
          () => ac.abort(new Error(`hand-off of partition ${p} passed its deadline`)),
          Math.max(0, deadline - clock.now()),
        );
        try {
          await Promise.race([
            Promise.resolve().then(() => this.#o.onRelease!(p, { epoch, signal: ac.signal, deadline, to })),
            new Promise<never>((_, reject) =>
              ac.signal.addEventListener('abort', () => reject(ac.signal.reason as Error), { once: true }),
            ),
          ]);
        } catch (err) {
          if (ac.signal.aborted) timedOut = true;
          const error = err instanceof Error ? err : new Error(String(err));
          this.#o.logger.warn('ring: onRelease failed; releasing anyway', {
            partition: p,
            err: error.message,
          });
          this.#ctx.emit({ type: 'release-failed', partition: p, epoch, error });
        } finally {
          clock.clearTimeout(t);
        }
      }
      if (generation !== this.#lease.generation) return;
      // 3. Release the record (compare-and-set on our revision), retrying while the store is unavailable.
      const rec: PartitionRecord = {
        v: 1,
        owner: this.#ctx.nodeId,
        instance: this.#lease.instance,
        epoch,
        state: 'released',
        at: clock.wallNow(),
        ...(to ? { to } : {}),
      };
      for (;;) {
        try {
          this.#local.myRev[p] = await this.#writeRecord(p, rec, this.#local.myRev[p]!);
          break;
        } catch (err) {
          if (generation !== this.#lease.generation) return;
          if (isConflict(err)) {
            this.#local.state[p] = L_IDLE;
            this.#ctx.emit({
              type: 'lost',
              partition: p,
              epoch,
              reason: 'record taken over during the hand-off',
            });
            return;
          }
          this.#o.logger.warn('ring: could not write a release; retrying', {
            partition: p,
            err: (err as Error)?.message,
          });
          // Only a pause before the retry; the next line checks the lease.
          await clock.sleep(100).catch(() => undefined);
          if (!this.#lease.valid() || this.#ctx.closed()) return;
        }
      }
      this.#local.state[p] = L_IDLE;
      const tookMs = clock.now() - t0;
      this.#ctx.metrics.handoff('release', tookMs / 1000);
      this.#ctx.emit({ type: 'released', partition: p, epoch, to, tookMs, drainMs, timedOut });
    } finally {
      if (generation === this.#lease.generation) {
        if (this.#local.state[p] === L_RELEASING) this.#local.state[p] = L_IDLE;
        this.#local.busy.delete(p);
        this.markDirty(p);
      }
    }
  }
}
