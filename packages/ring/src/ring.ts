// The ring member: `createRing` and the `Ring` it returns, which wires the view, the lease, the local
// partitions, the hand-off and the coordinator together and answers the `Ring` queries.
import { ClosableResource, ClosedError, StreamPublisher } from '@gc/core';
import { createElection, type Election } from '@gc/election';
import type { RouteHook } from '@gc/rpc';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { ensureConfig, openRingBucket, updatePins } from './bucket.js';
import { Coordinator, RECORD_DECISION_DELAY_MS } from './coordinator.js';
import { UnknownNodeError } from './errors.js';
import { Handoff } from './handoff.js';
import { loadHasher, partitionOfKey } from './hash.js';
import { MemberLease } from './lease.js';
import { LocalPartitions } from './local.js';
import { ringMetrics, type RingMetrics } from './metrics.js';
import { resolveRingOptions } from './options.js';
import { ringNames, type RingNames } from './records.js';
import { checkPartition, type ViewMember } from './tables.js';
import type {
  AdmitHook,
  Ring,
  RingEvent,
  RingInit,
  RingMember,
  RingOptions,
  RingSnapshot,
  RingStatus,
  RingWatcher,
} from './types.js';
import { RingView } from './view.js';

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
    // Cleanup: the start's error is the one to report.
    await ring.close().catch(() => undefined);
    throw err;
  }
  return ring;
}

class RingImpl extends ClosableResource implements Ring {
  readonly platform: string;
  readonly app: string;
  readonly nodeId: string;
  readonly bucket: string;
  readonly partitionCount: number;
  readonly route: RouteHook;
  readonly admit: AdmitHook;
  readonly #nc: NatsConnection;
  readonly #kv: KV;
  readonly #names: RingNames;
  readonly #o: RingOptions;
  readonly #metrics: RingMetrics;
  readonly #view: RingView;
  readonly #local: LocalPartitions;
  readonly #lease: MemberLease;
  readonly #handoff: Handoff;
  #leaving = false;
  #started = false;
  #closed = false;
  // Coordinator.
  #election: Election | undefined;
  readonly #coord: Coordinator;
  /** The hand-off's record writes (compare-and-set publishes; their acks on one subscription). */
  readonly #publisher: StreamPublisher;

  constructor(nc: NatsConnection, kv: KV, names: RingNames, partitions: number, o: RingOptions) {
    super();
    this.#nc = nc;
    this.#publisher = new StreamPublisher(nc);
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
          this.#handoff.markDirty(p);
          // Record changes (moves completing) are batched: a decision per record would cost O(partitions)
          // each during a hand-off of thousands; membership and pin changes are decided at once.
          if (this.#coord.coordinating) this.#coord.schedule(RECORD_DECISION_DELAY_MS, false);
        },
        member: (id, prev) => this.#onMember(id, prev),
        map: () => this.#handoff.markDirty(),
        pins: () => this.#coord.schedule(),
      },
    });
    const ctx = {
      nodeId: this.nodeId,
      bucket: this.bucket,
      partitionCount: partitions,
      kv,
      publisher: this.#publisher,
      names,
      view: this.#view,
      o,
      metrics: this.#metrics,
      emit: (e: RingEvent) => this.#emit(e),
      closed: () => this.#closed,
      leaving: () => this.#leaving,
    };
    this.#local = new LocalPartitions({ ...ctx, app: this.app, leaseValid: () => this.#lease.valid() });
    this.#lease = new MemberLease({
      ...ctx,
      stopServing: (reason) => {
        const n = this.#local.dropAll(reason);
        this.#local.busy.clear();
        return n;
      },
      rejoined: () => this.#handoff.markDirty(),
    });
    this.#handoff = new Handoff({
      ...ctx,
      local: this.#local,
      lease: this.#lease,
      started: () => this.#started,
    });
    this.#coord = new Coordinator({ ...ctx, election: () => this.#election });
    this.route = (app, key, previous) =>
      app === this.app ? this.#view.route(app, key, previous) : undefined;
    this.admit = (key, method) => this.#local.admit(key, method);
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
    // Awaited below; this only keeps a failure while the ring starts from being unhandled.
    election?.catch(() => undefined);
    try {
      await this.#lease.open(this.#nc);
      await this.#view.start(this.#kv);
      await this.#lease.join();
    } catch (err) {
      // Cleanup: the start's error is the one to report.
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
    this.#handoff.markDirty();
  }

  #emit(event: RingEvent): void {
    try {
      this.#o.onEvent?.(event);
    } catch (err) {
      this.#o.logger.error('ring onEvent callback threw', { err, event: event.type });
    }
  }

  // ---------------------------------------------------------------------------------------------- serving

  partitionOf(key: string): number {
    return partitionOfKey(key, this.partitionCount);
  }

  ownerOf(key: string): string | undefined {
    return this.#view.ownerOf(key);
  }

  owns(key: string): boolean {
    return this.#local.serves(partitionOfKey(key, this.partitionCount));
  }

  ownsPartition(partition: number): boolean {
    return this.#local.serves(checkPartition(partition, this.partitionCount));
  }

  epochOf(partition: number): number | undefined {
    return this.#local.epochOf(checkPartition(partition, this.partitionCount));
  }

  partitions(): number[] {
    return this.#local.served();
  }

  members(): RingMember[] {
    return this.snapshot().members;
  }

  snapshot(): RingSnapshot {
    return this.#view.snapshot(this.platform, this.app, this.nodeId);
  }

  // Live at once: the view's bucket watch runs since createRing() resolved.
  // eslint-disable-next-line @typescript-eslint/require-await -- async for the one watch idiom; live at once
  async watch(): Promise<RingWatcher> {
    return this.#view.watch(this.platform, this.app, this.nodeId);
  }

  status(): RingStatus {
    const { serving, owning, releasing } = this.#local.counts();
    const v = this.#view;
    let moving = 0;
    for (let p = 0; p < this.partitionCount; p++) {
      const t = v.target[p]!;
      if (t >= 0 && t !== v.serving[p]) moving++;
    }
    return {
      joined: this.#lease.joined,
      instance: this.#lease.instance,
      leaseRemainingMs: this.#lease.remainingMs(),
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

  // ---------------------------------------------------------------------------------------------- pins

  pins(): Record<number, string> {
    return Object.fromEntries(this.#view.pins);
  }

  async pin(partition: number, node: string): Promise<void> {
    const p = checkPartition(partition, this.partitionCount);
    if (typeof node !== 'string' || !this.#view.members.has(node))
      throw new UnknownNodeError(node, [...this.#view.members.keys()].sort());
    await this.#updatePins((pins) => {
      pins[String(p)] = node;
    });
    this.#emit({ type: 'pin', partition: p, node });
  }

  async unpin(partition: number): Promise<void> {
    const p = checkPartition(partition, this.partitionCount);
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
      this.#handoff.markDirty();
      this.#coord.schedule();
    }
    // Our own record deleted or replaced by someone else: the lease is gone.
    const lease = this.#lease;
    if (
      id === this.nodeId &&
      lease.joined &&
      cur?.record.instance !== lease.instance &&
      (!cur || cur.revision > lease.revision)
    )
      lease.lost('lease-taken');
  }

  // ---------------------------------------------------------------------------------------------- close

  protected async closeResources(): Promise<void> {
    const clock = this.#o.clock;
    this.#leaving = true;
    let electionClosed: Promise<void> | undefined;
    try {
      this.#coord.stop(this.#election?.epoch() ?? 0);
      // Step down first (another member coordinates at once); closing the election's store can take a
      // while (consumer deletions), so it runs alongside the hand-off.
      if (this.#election?.isLeader()) await this.#election.stepDown().catch(() => undefined);
      // Leaving: a failed step-down or close only means the lease expires by its TTL.
      electionClosed = this.#election?.close().catch(() => undefined);
      if (this.#lease.joined) {
        // Announce the leave so the coordinator assigns our partitions elsewhere, then hand them off.
        await this.#lease.announceLeave();
        this.#handoff.markDirty();
        const until = clock.now() + this.#o.leaveTimeoutMs;
        while (clock.now() < until && this.#lease.joined && this.#local.hasAny()) {
          if (this.#handoff.noOtherActiveMember()) this.#handoff.markDirty();
          // Only a pause in the leave's wait loop.
          await clock.sleep(20).catch(() => undefined);
        }
      }
    } finally {
      this.#closed = true;
      this.#local.dropAll('ring closed');
      this.#handoff.clearTimer();
      this.#coord.clearTimers();
      await this.#lease.end();
      this.#view.close();
      this.#publisher.close();
      // The election's store close waits up to 2 s for its pending reads (an unref'd timer: it does not
      // keep the process alive); the lease itself is already given up, so do not hold the leave for it.
      if (electionClosed) await Promise.race([electionClosed, clock.sleep(200).catch(() => undefined)]);
    }
  }
}
