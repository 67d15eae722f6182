import { ClosedError, type TimerHandle } from '@gc/core';
import { createElection, type Election } from '@gc/election';
import { NotOwnerError, type RouteHook } from '@gc/rpc';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nuid, type NatsConnection } from '@nats-io/nats-core';
import { ensureConfig, isConflict, openRingBucket, updatePins } from './bucket.js';
import { Coordinator, RECORD_DECISION_DELAY_MS } from './coordinator.js';
import { NodeIdInUseError, RingStoreError, UnknownNodeError, UnknownPartitionError } from './errors.js';
import { loadHasher, partitionOfKey } from './hash.js';
import { ringMetrics, type RingMetrics } from './metrics.js';
import { resolveRingOptions } from './options.js';
import { encodeJson, parseMemberRecord, ringNames, type RingNames } from './records.js';
import type {
  Admission,
  AdmitHook,
  MemberRecord,
  PartitionRecord,
  Ring,
  RingEvent,
  RingInit,
  RingMember,
  RingOptions,
  RingSnapshot,
  RingStatus,
  RingWatcher,
} from './types.js';
import { RingView, S_NONE, S_OWNED, S_OWNING, S_RELEASED, type ViewMember } from './view.js';

/** Local state of a partition on this member. */
const L_IDLE = 0;
const L_CLAIMING = 1;
const L_OWNING = 2;
const L_SERVING = 3;
const L_RELEASING = 4;

/**
 * Joins the ring of `app` as member `nodeId` and returns it once this node has its lease and the current
 * partition map. The partition count is read from the ring bucket (or stored, when the ring is new).
 *
 * How it works (see the README for the safety argument): every member holds a lease (`members.{nodeId}`,
 * renewed by compare-and-set) and stops serving when it cannot renew within `renewDeadlineMs`; one member,
 * elected with `@gc/election`, is the coordinator: it expires members whose lease stopped changing for their
 * TTL, computes the balanced assignment that moves the fewest partitions, and publishes it (`map`, fenced by
 * its epoch). Members act on it: an owner whose partition is assigned elsewhere stops admitting calls for
 * it, drains the ones in flight, runs `onRelease` and writes `released`; the new owner then claims it with a
 * compare-and-set that raises the epoch, runs `onOwn` and writes `owned`. Partitions of an expired member
 * are claimed directly. Callers route keys to `owned` records' owners and hold calls while a partition moves.
 *
 * @example
 * const ring = await createRing(nc, {
 *   platform: 'prod', app: 'cache', nodeId: 'n1',
 *   onOwn: async (p, { epoch }) => warm(p, epoch),
 *   onRelease: async (p) => flush(p),
 * });
 * const server = createRpcServer(nc, { platform: 'prod', app: 'cache', nodeId: 'n1', admitKey: ring.admit });
 * const client = createRpcClient(nc, { platform: 'prod', route: ring.route });
 */
export async function createRing(nc: NatsConnection, init: RingInit): Promise<Ring> {
  const o = resolveRingOptions(init);
  await loadHasher();
  const names = ringNames(o.platform, o.app);
  const kv = await openRingBucket(nc, names.bucket, o.replicas, o.opTimeoutMs);
  const partitions = await ensureConfig(kv, names, o.partitions, o.nodeId, o.clock.wallNow());
  const ring = new RingImpl(nc, kv, names, partitions, o);
  try {
    await ring.start();
  } catch (err) {
    await ring.close().catch(() => undefined);
    throw err;
  }
  return ring;
}

class RingImpl implements Ring {
  readonly platform: string;
  readonly app: string;
  readonly nodeId: string;
  readonly bucket: string;
  readonly partitionCount: number;
  readonly route: RouteHook;
  readonly admit: AdmitHook;
  readonly #nc: NatsConnection;
  readonly #kv: KV;
  /** The bucket again, with a timeout that fits the renew interval: a hung renewal is retried in time. */
  #leaseKv!: KV;
  readonly #names: RingNames;
  readonly #o: RingOptions;
  readonly #metrics: RingMetrics;
  readonly #view: RingView;
  readonly #local: Uint8Array;
  readonly #myEpoch: Float64Array;
  readonly #myRev: Float64Array;
  readonly #inflight: Int32Array;
  readonly #drains = new Map<number, () => void>();
  readonly #ownAbort = new Map<number, AbortController>();
  readonly #busy = new Set<number>();
  readonly #dirty = new Set<number>();
  #dirtyAll = true;
  #reconcileTimer: TimerHandle | undefined;
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
  #leaving = false;
  #started = false;
  #closing: Promise<void> | undefined;
  #closed = false;
  #resolveClosed!: () => void;
  readonly #closedP = new Promise<void>((r) => (this.#resolveClosed = r));
  // Write concurrency.
  #writesInFlight = 0;
  readonly #writeQueue: Array<() => void> = [];
  // Coordinator.
  #election: Election | undefined;
  readonly #coord: Coordinator;

  constructor(nc: NatsConnection, kv: KV, names: RingNames, partitions: number, o: RingOptions) {
    this.#nc = nc;
    this.#kv = kv;
    this.#names = names;
    this.#o = o;
    this.platform = names.platform;
    this.app = names.app;
    this.nodeId = o.nodeId;
    this.bucket = names.bucket;
    this.partitionCount = partitions;
    this.#metrics = ringMetrics(o.registry, { platform: names.platform, app: names.app, node: o.nodeId });
    this.#metrics.partitions(partitions);
    this.#local = new Uint8Array(partitions);
    this.#myEpoch = new Float64Array(partitions);
    this.#myRev = new Float64Array(partitions);
    this.#inflight = new Int32Array(partitions);
    this.#view = new RingView({
      names,
      partitions,
      clock: o.clock,
      logger: o.logger,
      holdTimeoutMs: o.holdTimeoutMs,
      maxHeldCalls: o.maxHeldCalls,
      metrics: this.#metrics,
      listener: {
        record: (p) => {
          this.#markDirty(p);
          // Record changes (moves completing) are batched: a decision per record would cost O(partitions)
          // each during a hand-off of thousands; membership and pin changes are decided at once.
          if (this.#coord.coordinating) this.#coord.schedule(RECORD_DECISION_DELAY_MS, false);
        },
        member: (id, prev) => this.#onMember(id, prev),
        map: () => this.#markDirty(),
        pins: () => this.#coord.schedule(),
      },
    });
    this.#coord = new Coordinator({
      nodeId: this.nodeId,
      bucket: this.bucket,
      partitionCount: partitions,
      kv,
      names,
      view: this.#view,
      o,
      metrics: this.#metrics,
      emit: (e) => this.#emit(e),
      closed: () => this.#closed,
      election: () => this.#election,
    });
    this.route = (app, key, previous) =>
      app === this.app ? this.#view.route(app, key, previous) : undefined;
    this.admit = (key, method) => this.#admit(key, method);
  }

  get held(): number {
    return this.#view.held;
  }

  // ---------------------------------------------------------------------------------------------- start

  async start(): Promise<void> {
    // The election is set up alongside the view and the lease (its events are wired once all three are
    // ready, so the coordinator never decides on a half-loaded view).
    const election = this.#o.coordinator
      ? createElection(this.#nc, {
          bucket: this.bucket,
          key: this.#names.coordinator,
          nodeId: this.nodeId,
          ttlMs: this.#o.ttlMs,
          renewIntervalMs: this.#o.renewIntervalMs,
          renewDeadlineMs: this.#o.renewDeadlineMs,
          pollIntervalMs: Math.max(50, Math.min(250, Math.round(this.#o.ttlMs / 10))),
          opTimeoutMs: Math.max(100, Math.min(this.#o.opTimeoutMs, Math.round(this.#o.renewIntervalMs / 2))),
          replicas: this.#o.replicas,
          clock: this.#o.clock,
          logger: this.#o.logger,
        })
      : undefined;
    election?.catch(() => undefined);
    try {
      const leaseTimeout = Math.max(
        50,
        Math.min(this.#o.opTimeoutMs, Math.round(this.#o.renewIntervalMs / 2) * 2),
      );
      this.#leaseKv = await new Kvm(jetstream(this.#nc, { timeout: leaseTimeout })).open(this.bucket);
      await this.#view.start(this.#kv);
      await this.#join();
    } catch (err) {
      void election?.then((e) => e.close()).catch(() => undefined);
      throw err;
    }
    if (election) {
      this.#election = await election;
      this.#election.on('acquired', ({ epoch }) => this.#coord.become(epoch));
      this.#election.on('lost', ({ epoch }) => this.#coord.stop(epoch));
      this.#election.on('stepped-down', ({ epoch }) => this.#coord.stop(epoch));
      if (this.#election.isLeader()) this.#coord.become(this.#election.epoch());
    }
    this.#started = true;
    this.#markDirty();
  }

  #emit(event: RingEvent): void {
    try {
      this.#o.onEvent?.(event);
    } catch (err) {
      this.#o.logger.error('ring onEvent callback threw', { err, event: event.type });
    }
  }

  // ---------------------------------------------------------------------------------------------- lease

  #record(state: MemberRecord['state']): MemberRecord {
    const wall = this.#o.clock.wallNow();
    return {
      v: 1,
      nodeId: this.nodeId,
      instance: this.#instance,
      weight: this.#o.weight,
      ttlMs: this.#o.ttlMs,
      state,
      startedAt: this.#memberRecord?.startedAt ?? wall,
      heartbeatAt: wall,
    };
  }

  /**
   * Writes this member's lease. A record of another live process with this node id (a restart before the
   * old lease expired) is taken over only after its revision stayed unchanged for its TTL on our clock.
   */
  async #join(): Promise<void> {
    const key = this.#names.member(this.nodeId);
    const clock = this.#o.clock;
    const start = clock.now();
    let seen: { revision: number; at: number } | undefined;
    for (;;) {
      if (this.#closed) throw new ClosedError(`ring ${this.bucket}`);
      let e;
      try {
        e = await this.#leaseKv.get(key);
      } catch (err) {
        throw new RingStoreError('read member', this.bucket, { cause: err });
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
          if (clock.now() - start > 3 * Math.max(other.ttlMs, this.#o.ttlMs))
            throw new NodeIdInUseError(this.nodeId, this.bucket, clock.now() - start);
          await clock.sleep(Math.min(100, other.ttlMs / 10));
          continue;
        }
        this.#o.logger.info('ring: taking over the expired lease of an earlier process with this node id', {
          nodeId: this.nodeId,
          previous: other.instance,
        });
      }
      const record = this.#record(this.#leaving ? 'leaving' : 'active');
      const sentAt = clock.now();
      try {
        const rev = e
          ? await this.#leaseKv.update(key, encodeJson(record), e.revision)
          : await this.#leaseKv.create(key, encodeJson(record));
        this.#memberRecord = record;
        this.#memberRev = rev;
        this.#leaseRenewed(sentAt);
        this.#joined = true;
        this.#emit({ type: 'joined', nodeId: this.nodeId, instance: this.#instance, weight: this.#o.weight });
        this.#scheduleRenew();
        return;
      } catch (err) {
        if (!isConflict(err)) throw new RingStoreError('write member', this.bucket, { cause: err });
      }
    }
  }

  #leaseRenewed(sentAt: number): void {
    this.#deadline = sentAt + this.#o.renewDeadlineMs;
    if (this.#deadlineTimer) this.#o.clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = this.#o.clock.setTimeout(
      () => this.#checkDeadline(),
      Math.max(0, this.#deadline - this.#o.clock.now()),
    );
  }

  #checkDeadline(): void {
    this.#deadlineTimer = undefined;
    if (this.#closed || !this.#joined) return;
    const left = this.#deadline - this.#o.clock.now();
    if (left <= 0) this.#leaseLost('renew-deadline');
    // Timers may fire a fraction of a millisecond early against performance.now(): look again.
    else this.#deadlineTimer = this.#o.clock.setTimeout(() => this.#checkDeadline(), Math.ceil(left));
  }

  #scheduleRenew(delay = this.#o.renewIntervalMs): void {
    if (this.#renewTimer) this.#o.clock.clearTimeout(this.#renewTimer);
    this.#renewTimer = this.#o.clock.setTimeout(() => {
      this.#renewTimer = undefined;
      void this.#renew();
    }, delay);
  }

  async #renew(state: MemberRecord['state'] = this.#leaving ? 'leaving' : 'active'): Promise<void> {
    if (this.#closed || !this.#joined) return;
    const record = this.#record(state);
    const sentAt = this.#o.clock.now();
    const generation = this.#generation;
    try {
      const rev = await this.#leaseKv.update(
        this.#names.member(this.nodeId),
        encodeJson(record),
        this.#memberRev,
      );
      if (generation !== this.#generation || !this.#joined) return;
      this.#memberRev = rev;
      this.#memberRecord = record;
      this.#leaseRenewed(sentAt);
      this.#scheduleRenew();
    } catch (err) {
      if (this.#closed || generation !== this.#generation) return;
      if (isConflict(err)) {
        // Our key changed under us: the coordinator expired us (we were cut off for a TTL) or it was deleted.
        this.#leaseLost('lease-taken');
      } else {
        this.#o.logger.warn('ring: lease renewal failed; retrying', { err: (err as Error)?.message });
        this.#scheduleRenew(Math.max(10, Math.round(this.#o.renewIntervalMs / 4)));
      }
    }
  }

  /** Stops serving everything at once and joins again under a new instance. */
  #leaseLost(reason: string): void {
    if (!this.#joined) return;
    this.#joined = false;
    this.#generation++;
    this.#deadline = -Infinity;
    this.#metrics.leaseLost();
    let n = 0;
    for (let p = 0; p < this.partitionCount; p++) {
      if (this.#local[p] === L_IDLE) continue;
      n++;
      this.#dropLocal(p, `lease lost (${reason})`);
    }
    this.#busy.clear();
    this.#o.logger.warn('ring: lease lost; stopped serving every partition', { reason, partitions: n });
    this.#emit({ type: 'lease-lost', reason, partitions: n });
    if (this.#closed || this.#leaving) return;
    this.#instance = nuid.next();
    if (this.#rejoining) return;
    this.#rejoining = true;
    void (async () => {
      while (!this.#closed && !this.#joined) {
        try {
          await this.#join();
        } catch (err) {
          if (this.#closed) break;
          this.#o.logger.warn('ring: re-joining failed; retrying', { err: (err as Error)?.message });
          await this.#o.clock.sleep(Math.round(this.#o.renewIntervalMs / 2)).catch(() => undefined);
        }
      }
      this.#rejoining = false;
      this.#markDirty();
    })();
  }

  #dropLocal(p: number, reason: string): void {
    const epoch = this.#myEpoch[p]!;
    this.#local[p] = L_IDLE;
    this.#ownAbort.get(p)?.abort(new Error(reason));
    this.#ownAbort.delete(p);
    this.#drains.get(p)?.();
    this.#emit({ type: 'lost', partition: p, epoch, reason });
    this.#updateOwnedMetric();
  }

  #leaseValid(): boolean {
    return this.#o.clock.now() < this.#deadline;
  }

  // ---------------------------------------------------------------------------------------------- serving

  #admit(key: string, method: string | undefined): Admission {
    const p = partitionOfKey(key, this.partitionCount);
    const l = this.#local[p]!;
    if (l === L_SERVING && this.#leaseValid()) {
      this.#inflight[p]!++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        if (--this.#inflight[p]! === 0) this.#drains.get(p)?.();
      };
    }
    const reason =
      l === L_RELEASING
        ? 'moving'
        : l === L_OWNING || l === L_CLAIMING
          ? 'owning'
          : l === L_SERVING
            ? 'lease-lost'
            : 'not-owner';
    throw new NotOwnerError(this.app, method ?? '?', this.nodeId, reason, {
      partition: p,
      revision: this.#view.revision[p]!,
    });
  }

  partitionOf(key: string): number {
    return partitionOfKey(key, this.partitionCount);
  }

  ownerOf(key: string): string | undefined {
    return this.#view.ownerOf(key);
  }

  owns(key: string): boolean {
    return this.#local[partitionOfKey(key, this.partitionCount)] === L_SERVING && this.#leaseValid();
  }

  #checkPartition(partition: unknown): number {
    if (
      typeof partition !== 'number' ||
      !Number.isInteger(partition) ||
      partition < 0 ||
      partition >= this.partitionCount
    )
      throw new UnknownPartitionError(partition, this.partitionCount);
    return partition;
  }

  ownsPartition(partition: number): boolean {
    return this.#local[this.#checkPartition(partition)] === L_SERVING && this.#leaseValid();
  }

  epochOf(partition: number): number | undefined {
    const l = this.#local[this.#checkPartition(partition)]!;
    return l === L_OWNING || l === L_SERVING || l === L_RELEASING ? this.#myEpoch[partition] : undefined;
  }

  partitions(): number[] {
    const out: number[] = [];
    if (!this.#leaseValid()) return out;
    for (let p = 0; p < this.partitionCount; p++) if (this.#local[p] === L_SERVING) out.push(p);
    return out;
  }

  members(): RingMember[] {
    return this.snapshot().members;
  }

  snapshot(): RingSnapshot {
    return this.#view.snapshot(this.platform, this.app, this.nodeId);
  }

  watch(): RingWatcher {
    return this.#view.watch(this.platform, this.app, this.nodeId);
  }

  status(): RingStatus {
    let serving = 0;
    let owning = 0;
    let releasing = 0;
    for (let p = 0; p < this.partitionCount; p++) {
      const l = this.#local[p];
      if (l === L_SERVING) serving++;
      else if (l === L_OWNING || l === L_CLAIMING) owning++;
      else if (l === L_RELEASING) releasing++;
    }
    const v = this.#view;
    let moving = 0;
    for (let p = 0; p < this.partitionCount; p++) {
      const t = v.target[p]!;
      if (t >= 0 && t !== v.serving[p]) moving++;
    }
    return {
      joined: this.#joined,
      instance: this.#instance,
      leaseRemainingMs: Math.max(0, this.#deadline - this.#o.clock.now()),
      serving,
      owning,
      releasing,
      coordinator: this.isCoordinator(),
      held: v.held,
      moving,
      mapVersion: v.map?.version ?? 0,
      members: v.members.size,
    };
  }

  isCoordinator(): boolean {
    return this.#coord.coordinating && (this.#election?.isLeader() ?? false);
  }

  #updateOwnedMetric(): void {
    let n = 0;
    for (let p = 0; p < this.partitionCount; p++) if (this.#local[p] === L_SERVING) n++;
    this.#metrics.owned(n);
  }

  // ---------------------------------------------------------------------------------------------- pins

  pins(): Record<number, string> {
    return Object.fromEntries(this.#view.pins);
  }

  async pin(partition: number, node: string): Promise<void> {
    const p = this.#checkPartition(partition);
    if (typeof node !== 'string' || !this.#view.members.has(node))
      throw new UnknownNodeError(node, [...this.#view.members.keys()].sort());
    await this.#updatePins((pins) => {
      pins[String(p)] = node;
    });
    this.#emit({ type: 'pin', partition: p, node });
  }

  async unpin(partition: number): Promise<void> {
    const p = this.#checkPartition(partition);
    if (!this.#view.pins.has(p)) return;
    await this.#updatePins((pins) => {
      delete pins[String(p)];
    });
    this.#emit({ type: 'unpin', partition: p });
  }

  async #updatePins(change: (pins: Record<string, string>) => void): Promise<void> {
    if (this.#closed) throw new ClosedError(`ring ${this.bucket}`);
    await updatePins(this.#kv, this.#names, this.#view, change);
  }

  // ---------------------------------------------------------------------------------------------- reconcile

  #markDirty(p?: number): void {
    if (p === undefined) this.#dirtyAll = true;
    else this.#dirty.add(p);
    if (this.#reconcileTimer || this.#closed) return;
    this.#reconcileTimer = this.#o.clock.setTimeout(() => {
      this.#reconcileTimer = undefined;
      this.#reconcile();
    }, 0);
  }

  #reconcile(): void {
    // Nothing is claimed or released before createRing has returned: the caller wires `ring.admit` into its
    // RPC server only then, and a partition served before that would refuse every call.
    if (this.#closed || !this.#started) return;
    if (this.#dirtyAll) {
      this.#dirtyAll = false;
      this.#dirty.clear();
      for (let p = 0; p < this.partitionCount; p++) this.#reconcileOne(p);
    } else {
      const ps = [...this.#dirty];
      this.#dirty.clear();
      for (const p of ps) this.#reconcileOne(p);
    }
  }

  #reconcileOne(p: number): void {
    if (this.#busy.has(p)) return;
    const v = this.#view;
    const l = this.#local[p]!;
    const target = v.targetOf(p);
    if (l === L_SERVING || l === L_OWNING) {
      // Someone else holds the record now (we were expired while cut off): stop at once.
      if (
        v.revision[p]! > this.#myRev[p]! &&
        (v.instance[p] !== this.#instance || v.epoch[p] !== this.#myEpoch[p])
      ) {
        this.#dropLocal(p, 'record taken over');
        return;
      }
      if (v.map && target !== this.nodeId) void this.#release(p, target);
      else if (this.#leaving && this.#noOtherActiveMember()) void this.#release(p, undefined);
      return;
    }
    if (l !== L_IDLE || target !== this.nodeId || this.#leaving || !this.#joined || !this.#leaseValid())
      return;
    const s = v.state[p]!;
    const owner = v.recOwner[p]! >= 0 ? v.nodeNames[v.recOwner[p]!]! : undefined;
    const claimable =
      s === S_NONE ||
      s === S_RELEASED ||
      ((s === S_OWNING || s === S_OWNED) &&
        !v.isLive(owner!, v.instance[p]!) &&
        v.instance[p] !== this.#instance);
    if (claimable) void this.#claim(p);
  }

  #noOtherActiveMember(): boolean {
    for (const [id, m] of this.#view.members)
      if (id !== this.nodeId && m.record.state === 'active') return false;
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
      const key = this.#names.partition(p);
      const data = encodeJson(rec);
      const rev =
        expected === 0 ? await this.#kv.create(key, data) : await this.#kv.update(key, data, expected);
      this.#view.applyRecord(p, rec, rev);
      return rev;
    } finally {
      this.#unslot();
    }
  }

  async #claim(p: number): Promise<void> {
    const v = this.#view;
    const generation = this.#generation;
    this.#busy.add(p);
    this.#local[p] = L_CLAIMING;
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
      owner: this.nodeId,
      instance: this.#instance,
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
      if (generation !== this.#generation) return;
      this.#myEpoch[p] = epoch;
      this.#myRev[p] = rev;
      this.#emit({ type: 'own-start', partition: p, epoch, from, takeover });
      const ac = new AbortController();
      this.#ownAbort.set(p, ac);
      if (onOwn) {
        this.#local[p] = L_OWNING;
        const done = await this.#runOnOwn(p, epoch, from, ac, generation);
        if (generation !== this.#generation || this.#local[p] !== L_OWNING) return;
        if (!done) {
          // The target moved away while onOwn kept failing: hand the partition on without serving it.
          ok = true;
          return;
        }
        // Serve before the `owned` record is visible, so a caller that sees it is admitted.
        this.#local[p] = L_SERVING;
        try {
          const r2 = await this.#writeRecord(p, { ...rec, state: 'owned', at: this.#o.clock.wallNow() }, rev);
          if (generation !== this.#generation) return;
          this.#myRev[p] = r2;
        } catch (err) {
          if (generation !== this.#generation) return;
          this.#o.logger.warn('ring: could not mark a partition owned; dropping it', {
            partition: p,
            err: (err as Error)?.message,
          });
          this.#dropLocal(p, 'owned write failed');
          return;
        }
      } else {
        this.#local[p] = L_SERVING;
      }
      ok = true;
      const tookMs = this.#o.clock.now() - t0;
      this.#metrics.handoff('own', tookMs / 1000);
      this.#emit({ type: 'owned', partition: p, epoch, tookMs });
      this.#updateOwnedMetric();
    } finally {
      if (generation === this.#generation) {
        if (!ok && this.#local[p] === L_CLAIMING) this.#local[p] = L_IDLE;
        this.#busy.delete(p);
        this.#markDirty(p);
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
        if (generation !== this.#generation || ac.signal.aborted) return false;
        const error = err instanceof Error ? err : new Error(String(err));
        this.#o.logger.warn('ring: onOwn failed; retrying', { partition: p, attempt, err: error.message });
        this.#emit({ type: 'own-failed', partition: p, epoch, attempt, error });
      } finally {
        clock.clearTimeout(timer);
      }
      if (this.#view.targetOf(p) !== this.nodeId || this.#closed || this.#leaving) return false;
      await clock.sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7)), ac.signal).catch(() => undefined);
      if (generation !== this.#generation || ac.signal.aborted) return false;
    }
  }

  async #release(p: number, to: string | undefined): Promise<void> {
    const clock = this.#o.clock;
    const generation = this.#generation;
    this.#busy.add(p);
    this.#local[p] = L_RELEASING;
    this.#updateOwnedMetric();
    const epoch = this.#myEpoch[p]!;
    const t0 = clock.now();
    const deadline = t0 + this.#o.releaseTimeoutMs;
    this.#emit({ type: 'release-start', partition: p, epoch, to, inFlight: this.#inflight[p]! });
    this.#ownAbort.get(p)?.abort(new Error(`partition ${p} is being handed off`));
    this.#ownAbort.delete(p);
    let timedOut = false;
    try {
      // 1. Drain: new calls are refused (callers hold them); wait for the ones in flight.
      if (this.#inflight[p]! > 0) {
        const drained = new Promise<void>((resolve) => this.#drains.set(p, resolve));
        const t = clock.setTimeout(() => this.#drains.get(p)?.(), Math.max(0, deadline - clock.now()));
        await drained;
        clock.clearTimeout(t);
        this.#drains.delete(p);
        if (this.#inflight[p]! > 0) timedOut = true;
      }
      const drainMs = clock.now() - t0;
      if (generation !== this.#generation) return;
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
          this.#emit({ type: 'release-failed', partition: p, epoch, error });
        } finally {
          clock.clearTimeout(t);
        }
      }
      if (generation !== this.#generation) return;
      // 3. Release the record (compare-and-set on our revision), retrying while the store is unavailable.
      const rec: PartitionRecord = {
        v: 1,
        owner: this.nodeId,
        instance: this.#instance,
        epoch,
        state: 'released',
        at: clock.wallNow(),
        ...(to ? { to } : {}),
      };
      for (;;) {
        try {
          this.#myRev[p] = await this.#writeRecord(p, rec, this.#myRev[p]!);
          break;
        } catch (err) {
          if (generation !== this.#generation) return;
          if (isConflict(err)) {
            this.#local[p] = L_IDLE;
            this.#emit({
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
          await clock.sleep(100).catch(() => undefined);
          if (!this.#leaseValid() || this.#closed) return;
        }
      }
      this.#local[p] = L_IDLE;
      const tookMs = clock.now() - t0;
      this.#metrics.handoff('release', tookMs / 1000);
      this.#emit({ type: 'released', partition: p, epoch, to, tookMs, drainMs, timedOut });
    } finally {
      if (generation === this.#generation) {
        if (this.#local[p] === L_RELEASING) this.#local[p] = L_IDLE;
        this.#busy.delete(p);
        this.#markDirty(p);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- coordinator

  #onMember(id: string, prev: ViewMember | undefined): void {
    const cur = this.#view.members.get(id);
    const shapeChanged =
      !prev ||
      !cur ||
      prev.record.instance !== cur.record.instance ||
      prev.record.weight !== cur.record.weight ||
      prev.record.state !== cur.record.state;
    if (shapeChanged) {
      this.#coord.membershipChangedAt = this.#o.clock.now();
      this.#markDirty();
      this.#coord.schedule();
    }
    // Our own record deleted or replaced by someone else: the lease is gone.
    if (
      id === this.nodeId &&
      this.#joined &&
      cur?.record.instance !== this.#instance &&
      (!cur || cur.revision > this.#memberRev)
    )
      this.#leaseLost('lease-taken');
  }

  // ---------------------------------------------------------------------------------------------- close

  close(): Promise<void> {
    this.#closing ??= this.#leave();
    return this.#closing;
  }

  async #leave(): Promise<void> {
    const clock = this.#o.clock;
    this.#leaving = true;
    let electionClosed: Promise<void> | undefined;
    try {
      this.#coord.stop(this.#election?.epoch() ?? 0);
      // Step down first (another member coordinates at once); closing the election's store can take a
      // while (consumer deletions), so it runs alongside the hand-off.
      if (this.#election?.isLeader()) await this.#election.stepDown().catch(() => undefined);
      electionClosed = this.#election?.close().catch(() => undefined);
      if (this.#joined) {
        // Announce the leave so the coordinator assigns our partitions elsewhere, then hand them off.
        if (this.#renewTimer) clock.clearTimeout(this.#renewTimer);
        await this.#renew('leaving');
        this.#markDirty();
        const until = clock.now() + this.#o.leaveTimeoutMs;
        while (clock.now() < until && this.#joined && this.#hasLocal()) {
          if (this.#noOtherActiveMember()) this.#markDirty();
          await clock.sleep(20).catch(() => undefined);
        }
      }
    } finally {
      this.#closed = true;
      for (let p = 0; p < this.partitionCount; p++)
        if (this.#local[p] !== L_IDLE) this.#dropLocal(p, 'ring closed');
      for (const t of [this.#renewTimer, this.#deadlineTimer, this.#reconcileTimer])
        if (t) clock.clearTimeout(t);
      this.#coord.clearTimers();
      if (this.#joined) {
        this.#joined = false;
        await this.#kv
          .delete(this.#names.member(this.nodeId), { previousSeq: this.#memberRev })
          .catch((err: unknown) => {
            this.#o.logger.warn('ring: could not delete own member record at close', {
              err: (err as Error)?.message,
            });
          });
      }
      this.#generation++;
      this.#view.close();
      // The election's store close waits up to 2 s for its pending reads (an unref'd timer: it does not
      // keep the process alive); the lease itself is already given up, so do not hold the leave for it.
      if (electionClosed) await Promise.race([electionClosed, clock.sleep(200).catch(() => undefined)]);
      this.#resolveClosed();
    }
  }

  #hasLocal(): boolean {
    for (let p = 0; p < this.partitionCount; p++) if (this.#local[p] !== L_IDLE) return true;
    return false;
  }

  closed(): Promise<void> {
    return this.#closedP;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
