import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  ClosedError,
  TimeoutError,
  memoryEpochStore,
  withTimeout,
  type Clock,
  type Epoch,
  type EpochStore,
  type Logger,
  type TimerHandle,
} from '@gc/core';
import { LeaseConflictError } from './errors.js';
import { electionMetrics, type ElectionMetrics } from './metrics.js';
import { MAX_PRIORITY, resolveElectionOptions } from './options.js';
import { openKvLeaseStore, type LeaseEntry, type LeaseStore } from './store.js';
import {
  ElectionState,
  LostReason,
  type AcquireVia,
  type Election,
  type ElectionEventName,
  type ElectionEvents,
  type ElectionOptions,
  type ElectionStateValue,
  type StepDownOptions,
  type LeaderInfo,
  type LeaderWatch,
  type LeaseRecord,
  type LostReasonValue,
} from './types.js';

/** Options accepted by {@link createElection}: everything but `bucket` and `nodeId` has a default. */
export type CreateElectionOptions = Partial<ElectionOptions> & Pick<ElectionOptions, 'bucket' | 'nodeId'>;

/**
 * Creates an election on NATS KV and starts contending (or observing). Async because it opens — and
 * creates when missing — the bucket and reads the lease once before returning. Contending starts on the
 * next tick, so listeners attached right after it resolves see every event, `acquired` included.
 *
 * @example
 * const election = await createElection(nc, { bucket: 'shop_orders_election', nodeId: 'node-a' });
 * election.on('acquired', ({ epoch }) => startServing(epoch));
 * election.on('lost', () => stopServing());
 * await election.waitForLeadership(10_000);
 */
export async function createElection(nc: NatsConnection, opts: CreateElectionOptions): Promise<Election> {
  const o = resolveElectionOptions(opts);
  const store = await openKvLeaseStore(nc, {
    bucket: o.bucket,
    key: o.key,
    replicas: o.replicas,
    timeoutMs: o.opTimeoutMs,
  });
  return startElection(store, o, true);
}

/**
 * Creates an election on any {@link LeaseStore} (for example `MemoryLeaseBackend` on a fake clock).
 * The store is closed with the election.
 */
export async function createElectionOnStore(
  store: LeaseStore,
  opts: CreateElectionOptions,
): Promise<Election> {
  return startElection(store, resolveElectionOptions(opts), true);
}

async function startElection(store: LeaseStore, o: ElectionOptions, ownsStore: boolean): Promise<Election> {
  const e = new ElectionImpl(store, o, ownsStore);
  await e.start();
  return e;
}

type Listener = (data: never) => void;

interface Lease {
  epoch: Epoch;
  revision: number;
  record: LeaseRecord;
  /** Clock time at which the last renew (or the grant) that succeeded was sent. */
  lastGoodSentAt: number;
  renewing: boolean;
}

class ElectionImpl implements Election {
  readonly nodeId: string;
  readonly #o: ElectionOptions;
  readonly #store: LeaseStore;
  readonly #ownsStore: boolean;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #epochs: EpochStore;
  readonly #metrics: ElectionMetrics;
  /** Marks this node's grants; renewed after a step-down or fencing so that it does not take back its old record. */
  #instance = randomBytes(6).toString('base64url');
  readonly #listeners = new Map<ElectionEventName, Set<Listener>>();
  readonly #timers = new Map<string, TimerHandle>();
  readonly #watches = new Set<WatchImpl>();

  #state: ElectionStateValue = ElectionState.Starting;
  #highest: Epoch;
  /**
   * Last observed entry, the clock time its revision was first seen, and whether it is a deletion that its
   * holder announced (a step-down's release record).
   */
  #obs: { revision: number; record: LeaseRecord | null; since: number; released: boolean } = {
    revision: -1,
    record: null,
    since: 0,
    released: false,
  };
  /** The last live grant observed (any holder): its revision, when first seen, and the TTL to wait on it. */
  #lastLive: { revision: number; since: number; ttl: number } | undefined;
  /**
   * True once any entry of the key was observed — by this process, or by an earlier one of this node (its epoch
   * store remembers an epoch): from then on an empty key is a vanished lease.
   */
  #sawEntry: boolean;
  /** Clock time of the last entry observed (watch or poll): how fresh `#obs` is. */
  #heardAt = 0;
  /** Highest epoch seen in a record (or release) of another holder. */
  #highestOther = 0;
  /**
   * Clock time this node's link to the store was last (re)established (creation, then every reconnect).
   * Fast failover ignores "no responders" until `renewDeadlineMs` after it: a live holder may not have
   * re-subscribed yet after a server restart, and a holder that has not is past its deadline by then.
   */
  #connectedAt: number;
  #stopReconnect: (() => void) | undefined;
  #leaderInfo: LeaderInfo = { holder: null, epoch: 0, revision: 0 };
  #lease: Lease | undefined;
  #acquiring = false;
  /**
   * Highest revision observed while this node's grant write was in flight. Not the last one observed: a poll
   * reply read before the grant landed can arrive after the watch delivered a later revision.
   */
  #seenWhileAcquiring = 0;
  #started = false;
  #contendingSince: number;
  #noResponders = 0;
  #stopWatch: (() => void) | undefined;
  #stopLiveness: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((r) => (this.#resolveClosed = r));

  constructor(store: LeaseStore, o: ElectionOptions, ownsStore: boolean) {
    this.#o = o;
    this.nodeId = o.nodeId;
    this.#store = store;
    this.#ownsStore = ownsStore;
    this.#clock = o.clock;
    this.#log = o.logger.child({ election: `${o.bucket}/${o.key}`, node: o.nodeId });
    this.#epochs = o.epochStore ?? memoryEpochStore();
    this.#highest = this.#epochs.load();
    this.#sawEntry = this.#highest > 0;
    this.#metrics = electionMetrics(o.registry, { bucket: o.bucket, key: o.key, node: o.nodeId });
    this.#contendingSince = this.#clock.now();
    this.#connectedAt = this.#clock.now();
  }

  async start(): Promise<void> {
    this.#stopReconnect = this.#store.onReconnect(() => {
      this.#connectedAt = this.#clock.now();
      this.#noResponders = 0;
    });
    this.#setState(this.#o.observeOnly ? ElectionState.Observer : ElectionState.Follower);
    this.#watchLease(true);
    await this.#poll();
    // Contend from the next tick on, so that listeners attached right after createElection() resolves see
    // every event, `acquired` included.
    this.#timer('start', 0, () => {
      this.#started = true;
      this.#contend();
    });
  }

  // ----- public API -------------------------------------------------------------------------------------

  state(): ElectionStateValue {
    return this.#state;
  }

  isLeader(): boolean {
    const l = this.#lease;
    return (
      this.#state === ElectionState.Leader &&
      l !== undefined &&
      this.#clock.now() < l.lastGoodSentAt + this.#o.renewDeadlineMs &&
      l.epoch >= this.#highest
    );
  }

  epoch(): Epoch {
    return this.#lease?.epoch ?? this.#leaderInfo.epoch;
  }

  highestEpoch(): Epoch {
    return this.#highest;
  }

  leader(): LeaderInfo {
    return { ...this.#leaderInfo };
  }

  waitForLeadership(timeoutMs: number): Promise<Epoch> {
    if (this.isLeader()) return Promise.resolve(this.#lease!.epoch);
    if (this.#state === ElectionState.Closed) return Promise.reject(new ClosedError('election'));
    return new Promise<Epoch>((resolve, reject) => {
      const done = () => {
        off();
        offState();
        this.#clock.clearTimeout(timer);
      };
      const off = this.on('acquired', ({ epoch }) => {
        if (!this.isLeader()) return; // never resolve for a grant that is already gone
        done();
        resolve(epoch);
      });
      const offState = this.on('state', ({ to }) => {
        if (to !== ElectionState.Closed) return;
        done();
        reject(new ClosedError('election'));
      });
      const timer = this.#clock.setTimeout(() => {
        done();
        reject(
          new TimeoutError(`leadership of ${this.#o.bucket}/${this.#o.key} for ${this.nodeId}`, timeoutMs),
        );
      }, timeoutMs);
    });
  }

  watch(): LeaderWatch {
    const w = new WatchImpl(() => this.#watches.delete(w));
    this.#watches.add(w);
    w.push(this.leader());
    if (this.#state === ElectionState.Closed) w.stop();
    return w;
  }

  on<E extends ElectionEventName>(event: E, listener: (data: ElectionEvents[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  observeEpoch(epoch: Epoch): void {
    this.#seeEpoch(epoch);
  }

  async stepDown(opts: StepDownOptions = {}): Promise<void> {
    const lease = this.#lease;
    if (this.#state !== ElectionState.Leader || !lease) return;
    const cooldownMs = opts.cooldownMs ?? this.#o.cooldownMs;
    if (!Number.isFinite(cooldownMs) || cooldownMs < 0) {
      throw new RangeError(
        `stepDown: cooldownMs must be a finite number >= 0, got ${String(opts.cooldownMs)}`,
      );
    }
    const started = this.#clock.now();
    this.#endLeadership();
    this.#instance = randomBytes(6).toString('base64url');
    this.#setState(ElectionState.Cooldown);
    let released = false;
    if (opts.release !== false) {
      try {
        await withTimeout(
          this.#store.delete(lease.revision, lease.record, this.#o.opTimeoutMs),
          this.#o.opTimeoutMs,
          'lease delete',
          this.#clock,
        );
        released = true;
      } catch (err) {
        // The lease stays until its TTL runs out; this node already stopped acting, so this is only slower.
        this.#emit('error', { op: 'delete', error: err as Error });
      }
    }
    this.#metrics.transition('step_down', (this.#clock.now() - started) / 1000);
    this.#log.info('stepped down', { epoch: lease.epoch, released });
    this.#emit('stepped-down', { epoch: lease.epoch, released });
    if ((this.#state as ElectionStateValue) !== ElectionState.Cooldown) return;
    this.#timer('cooldown', cooldownMs, () => {
      if (this.#state !== ElectionState.Cooldown) return;
      this.#setState(ElectionState.Follower);
      this.#contendingSince = this.#clock.now();
      this.#contend();
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#state === ElectionState.Leader) await this.stepDown();
    for (const h of this.#timers.values()) this.#clock.clearTimeout(h);
    this.#timers.clear();
    this.#watchLease(false);
    this.#stopLiveness?.();
    this.#stopReconnect?.();
    this.#setState(ElectionState.Closed);
    for (const w of [...this.#watches]) w.stop();
    if (this.#ownsStore) await this.#store.close();
    this.#resolveClosed();
  }

  closed(): Promise<void> {
    return this.#closedPromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ----- internals --------------------------------------------------------------------------------------

  /**
   * Followers and observers watch the lease key; a leader does not: every renew would come back to it through
   * its own watch, which costs about 15 % of renew latency (see `bench/renew.ts`). A leader learns that its
   * lease changed from its next renew (CAS) or poll, whichever comes first.
   */
  #watchLease(on: boolean): void {
    if (!on || this.#closing || this.#state === ElectionState.Closed) {
      this.#stopWatch?.();
      this.#stopWatch = undefined;
      return;
    }
    this.#stopWatch ??= this.#store.watch(
      (e) => this.#observe(e),
      (err) => this.#emit('error', { op: 'watch', error: err }),
    );
  }

  #emit<E extends ElectionEventName>(event: E, data: ElectionEvents[E]): void {
    if (event === 'error') {
      const { op, error } = data as ElectionEvents['error'];
      this.#log.debug('election store operation failed', { op, error });
    }
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (fn as (d: ElectionEvents[E]) => void)(data);
      } catch (err) {
        this.#log.error('election event listener threw', { event, error: err });
      }
    }
  }

  #setState(to: ElectionStateValue): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#metrics.state(to);
    this.#emit('state', { from, to });
  }

  #timer(name: string, ms: number, fn: () => void): void {
    this.#clearTimer(name);
    if (this.#state === ElectionState.Closed) return;
    const h = this.#clock.setTimeout(() => {
      this.#timers.delete(name);
      fn();
    }, ms);
    this.#timers.set(name, h);
  }

  #clearTimer(name: string): void {
    const h = this.#timers.get(name);
    if (h) this.#clock.clearTimeout(h);
    this.#timers.delete(name);
  }

  #seeEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch <= this.#highest) return;
    this.#highest = epoch;
    this.#epochs.save(epoch);
    const l = this.#lease;
    if (this.#state === ElectionState.Leader && l && l.epoch < epoch) {
      this.#lose(LostReason.Fenced, `epoch ${epoch} seen while leading with ${l.epoch}`);
    }
  }

  /** A new epoch: above every epoch seen, and (by default) at least the wall clock in ms. */
  #nextEpoch(): Epoch {
    const floor = this.#o.wallClockEpochFloor ? Math.floor(this.#clock.wallNow()) : 0;
    return Math.max(this.#highest + 1, floor);
  }

  async #poll(): Promise<void> {
    if (this.#state === ElectionState.Closed) return;
    try {
      const e = await withTimeout(
        this.#store.get(this.#o.opTimeoutMs),
        this.#o.opTimeoutMs,
        'lease read',
        this.#clock,
      );
      this.#observe(e ?? { revision: 0, record: null });
    } catch (err) {
      this.#emit('error', { op: 'get', error: err as Error });
    }
    this.#timer('poll', this.#pollEvery(), () => void this.#poll());
  }

  /**
   * Followers read the lease every `pollIntervalMs` beside the watch. A leader does not watch, and reads
   * only midway between its renewals (every `renewIntervalMs / 2`, at least `pollIntervalMs`): each renewal
   * is a CAS that finds any other write, so a foreign write or a deletion is seen within half a renew
   * interval — long before another node may act on it (a TTL) — at a quarter of the reads a leader made
   * when it polled like a follower (those were most of an idle node's CPU).
   */
  #pollEvery(): number {
    return this.#state === ElectionState.Leader
      ? Math.max(this.#o.pollIntervalMs, Math.round(this.#o.renewIntervalMs / 2))
      : this.#o.pollIntervalMs;
  }

  #observe(e: LeaseEntry): void {
    if (this.#state === ElectionState.Closed) return;
    if (this.#acquiring) this.#seenWhileAcquiring = Math.max(this.#seenWhileAcquiring, e.revision);
    const now = this.#clock.now();
    // Out of touch for longer than a poll (cut off, paused): the revisions seen next may belong to a recreated
    // bucket and only look like successors of the last live grant seen before. And an empty key equal to the
    // one seen before the gap proves nothing about the gap: grants may have come and gone (the bucket recreated
    // again) unseen, so it counts as a new observation — a free lease is free a full TTL from now.
    const outOfTouch = now - this.#heardAt > this.#o.pollIntervalMs + this.#o.opTimeoutMs;
    if (outOfTouch) this.#lastLive = undefined;
    this.#heardAt = now;
    if (e.record) this.#seeEpoch(e.record.epoch);
    if (e.releasedEpoch) this.#seeEpoch(e.releasedEpoch);
    const other = e.record
      ? e.record.instance === this.#instance
        ? 0
        : e.record.epoch
      : (e.releasedEpoch ?? 0);
    this.#highestOther = Math.max(this.#highestOther, other);
    const lease = this.#lease;
    if (this.#state === ElectionState.Leader && lease) {
      // Older than our own last write: a stale read (a poll reply overtaken by the watch).
      if (e.revision !== 0 && e.revision < lease.revision) return;
      if (e.revision === lease.revision) return void this.#note(e);
      if (e.record && e.record.instance === this.#instance && e.record.epoch === lease.epoch) {
        return void this.#note(e); // our own renew, seen before its reply
      }
      this.#note(e);
      if (e.record) return this.#lose(LostReason.LeaseTaken, `now held by ${e.record.holder}`);
      return this.#lose(LostReason.LeaseDeleted, `revision ${e.revision}`);
    }
    // Contend on a change, and also whenever nothing is scheduled: an acquire that lost a race (or timed out)
    // may leave an observation that did not change but still needs acting on (a free lease).
    if (this.#note(e, outOfTouch) || !this.#timers.has('action')) this.#contend();
  }

  /**
   * Records an observation; returns true when the entry changed: another revision, or the same revision with
   * other content (revision numbers are reused when the bucket is recreated) — or `afterGap` with an empty
   * key: the first read after being out of touch proves nothing about the gap even when it looks like the
   * last one (grants may have come and gone, the bucket recreated again), so its wait starts afresh. (A live
   * record equal to the last one seen is the same grant: epochs are unique.)
   */
  #note(e: LeaseEntry, afterGap = false): boolean {
    const o = this.#obs;
    const changed =
      (afterGap && !e.record) ||
      e.revision !== o.revision ||
      (e.record && o.record
        ? e.record.epoch !== o.record.epoch || e.record.instance !== o.record.instance
        : e.record !== o.record || (e.releasedEpoch !== undefined) !== o.released);
    if (!changed) return false;
    const now = this.#clock.now();
    this.#obs = {
      revision: e.revision,
      record: e.record,
      since: now,
      released: e.releasedEpoch !== undefined,
    };
    this.#noResponders = 0;
    if (e.revision > 0) this.#sawEntry = true;
    // Revisions went back (a recreated bucket, or a stale read): later ones are no successors of the last live one.
    if (this.#lastLive && e.revision <= this.#lastLive.revision) this.#lastLive = undefined;
    this.#clearTimer('expire');
    if (e.record) {
      const ttl = Math.max(e.record.ttlMs, this.#o.ttlMs);
      this.#lastLive = { revision: e.revision, since: now, ttl };
      if (e.record.instance !== this.#instance) {
        // The server never expires a lease: report a holder gone once its revision stayed for a full TTL.
        this.#timer('expire', ttl, () => this.#expireLeaderInfo(e.revision));
      }
    }
    this.#setLeaderInfo(
      e.record
        ? { holder: e.record.holder, epoch: e.record.epoch, revision: e.revision }
        : { holder: null, epoch: this.#leaderInfo.epoch, revision: e.revision },
    );
    return true;
  }

  #setLeaderInfo(info: LeaderInfo): void {
    const changed = info.holder !== this.#leaderInfo.holder || info.epoch !== this.#leaderInfo.epoch;
    this.#leaderInfo = info;
    if (!changed) return;
    this.#emit('leader', { ...info });
    for (const w of this.#watches) w.push({ ...info });
  }

  #expireLeaderInfo(revision: number): void {
    if (this.#obs.revision !== revision || !this.#obs.record || this.#state === ElectionState.Leader) return;
    this.#setLeaderInfo({ holder: null, epoch: this.#leaderInfo.epoch, revision });
  }

  /** Follower logic for the current observation: schedule an acquire, a takeover, or probes. */
  #contend(): void {
    if (this.#state !== ElectionState.Follower || this.#acquiring || !this.#started) return;
    this.#clearTimer('action');
    this.#clearTimer('probe');
    const { revision, record, since, released } = this.#obs;
    if (revision < 0) return;
    if (!record) {
      const delay = Math.max(
        this.#freeAfter(revision, since, released),
        (MAX_PRIORITY - this.#o.priority) * this.#o.priorityStepMs,
      );
      if (delay === 0) return void this.#tryAcquire(revision, 'create');
      this.#timer('action', delay, () => void this.#tryAcquire(revision, 'create'));
      return;
    }
    if (record.instance === this.#instance && record.epoch >= this.#highestOther) {
      // Our own grant outlived our leadership (a renew landed after the deadline, or its reply was lost):
      // nobody else holds it, so take it again with a new epoch. Not if another holder had a higher epoch
      // since: then our record is back by a late write on a reused revision (a recreated bucket).
      return void this.#tryAcquire(revision, 'reacquire');
    }
    // The holder is another node: it is expired only when this revision stayed for a full TTL on our clock.
    const ttl = Math.max(record.ttlMs, this.#o.ttlMs);
    const wait = since + ttl - this.#clock.now();
    this.#timer('action', Math.max(0, wait), () => void this.#tryAcquire(revision, 'takeover'));
    if (this.#o.fastFailover && record.live) {
      this.#timer('probe', this.#o.fastFailoverIntervalMs, () => void this.#probe(revision));
    }
  }

  /**
   * How long to wait before creating on a free lease (a deletion at `revision`, first seen at `since`; or
   * revision 0: no entry at all). A deletion its holder announced (step-down) is free at once, and so is an
   * empty key that this node never saw an entry of (a new bucket). Any other deletion — a server delete
   * marker, a purge, a bucket recreated — may hide a grant this node never saw: it came after that grant,
   * whose holder stops acting within its renew deadline of sending it, so waiting a full TTL from first
   * seeing the deletion is safe. When the deletion directly follows (revision + 1) the last live grant seen,
   * nothing can be hidden between them, and the usual rule applies: a full TTL since that grant was seen.
   */
  #freeAfter(revision: number, since: number, released: boolean): number {
    if (released || (revision === 0 && !this.#sawEntry)) return 0;
    const live = this.#lastLive;
    const now = this.#clock.now();
    if (live && revision === live.revision + 1) return Math.max(0, live.since + live.ttl - now);
    return Math.max(0, since + Math.max(this.#o.ttlMs, live?.ttl ?? 0) - now);
  }

  async #probe(revision: number): Promise<void> {
    if (this.#state !== ElectionState.Follower || this.#obs.revision !== revision) return;
    const r = await this.#store.probe(this.#o.fastFailoverIntervalMs);
    if (this.#state !== ElectionState.Follower || this.#obs.revision !== revision) return;
    if (r.kind === 'absent' && this.#clock.now() < this.#connectedAt + this.#o.renewDeadlineMs) {
      // This node (re)connected recently, maybe after a server restart: a live holder may still be
      // reconnecting and not yet subscribed. It cannot renew without reconnecting, so by renewDeadlineMs
      // after our own reconnect it has either answered or stopped acting.
      this.#noResponders = 0;
    } else {
      this.#noResponders = r.kind === 'absent' ? this.#noResponders + 1 : 0;
    }
    if (this.#noResponders >= this.#o.fastFailoverProbes) {
      this.#log.info('leader does not answer liveness probes: fast takeover', { revision });
      return void this.#tryAcquire(revision, 'fast-failover');
    }
    this.#timer('probe', this.#o.fastFailoverIntervalMs, () => void this.#probe(revision));
  }

  async #tryAcquire(expected: number, via: AcquireVia): Promise<void> {
    if (this.#state !== ElectionState.Follower || this.#acquiring || this.#obs.revision !== expected) return;
    if (this.#clock.now() - this.#heardAt > this.#o.pollIntervalMs + this.#o.opTimeoutMs) {
      // Nothing heard from the store for longer than a poll (cut off, paused): it may have moved on, even to
      // the same revision number in a recreated bucket. Look again before writing on the old observation.
      return void this.#pollNow();
    }
    this.#acquiring = true;
    this.#clearTimer('action');
    this.#clearTimer('probe');
    const epoch = this.#nextEpoch();
    // Persist before use: a crash after the write must never let this node reuse the epoch.
    this.#seeEpoch(epoch);
    const record: LeaseRecord = {
      holder: this.nodeId,
      instance: this.#instance,
      epoch,
      ttlMs: this.#o.ttlMs,
      live: this.#o.fastFailover,
      priority: this.#o.priority,
      grantedAt: Math.floor(this.#clock.wallNow()),
    };
    // Fast failover: answer probes before the record that announces it exists, or a contender could see
    // "no responders" for a live leader.
    let stopLiveness: (() => void) | undefined;
    if (this.#o.fastFailover) stopLiveness = this.#store.serveLiveness(() => epoch);
    const sentAt = this.#clock.now();
    const sentAtWallMs = this.#clock.wallNow();
    this.#seenWhileAcquiring = 0;
    let revision: number;
    try {
      revision = await withTimeout(
        this.#store.put(record, Math.max(0, expected), this.#o.opTimeoutMs),
        this.#o.opTimeoutMs,
        'lease acquire',
        this.#clock,
      );
    } catch (err) {
      stopLiveness?.();
      this.#acquiring = false;
      if (this.#state !== ElectionState.Follower) return;
      if (err instanceof LeaseConflictError) {
        void this.#pollNow();
      } else {
        this.#emit('error', { op: expected > 0 ? 'update' : 'create', error: err as Error });
        this.#timer('action', this.#o.pollIntervalMs, () => this.#contend());
      }
      return;
    }
    this.#acquiring = false;
    // The watch stays on while the write is in flight: a later revision (a deletion, another grant) or a
    // higher epoch seen before the reply means this grant is already gone. It is never announced.
    const overtaken = this.#seenWhileAcquiring > revision || this.#highest > epoch;
    if (
      this.#state !== ElectionState.Follower ||
      overtaken ||
      this.#clock.now() >= sentAt + this.#o.renewDeadlineMs
    ) {
      // Closed or stepped aside meanwhile, overtaken, or the reply came too late to act on: leave the
      // record; the own-record rule (or the TTL) deals with it.
      stopLiveness?.();
      if (overtaken) {
        this.#log.info('grant overtaken before its reply: not leading', { epoch, revision, via });
      } else {
        this.#note({ revision, record });
      }
      if (this.#state === ElectionState.Follower) this.#contend();
      return;
    }
    this.#note({ revision, record });
    this.#stopLiveness = stopLiveness;
    const lease: Lease = { epoch, revision, record, lastGoodSentAt: sentAt, renewing: false };
    this.#lease = lease;
    this.#setState(ElectionState.Leader);
    // A `state` listener may have fenced this grant (observeEpoch): then it is over and never announced.
    if (this.#lease !== lease) return;
    this.#watchLease(false);
    this.#metrics.epoch(epoch);
    const tookMs = this.#clock.now() - this.#contendingSince;
    this.#metrics.transition('acquire', tookMs / 1000);
    this.#scheduleLeaderTimers();
    if (!this.isLeader()) return;
    this.#log.info('leadership acquired', { epoch, revision, via });
    const deadline = sentAt + this.#o.renewDeadlineMs;
    this.#emit('acquired', { epoch, revision, via, tookMs, sentAt, sentAtWallMs, deadline });
  }

  async #pollNow(): Promise<void> {
    this.#clearTimer('poll');
    await this.#poll();
  }

  #scheduleLeaderTimers(): void {
    const l = this.#lease!;
    const now = this.#clock.now();
    this.#timer('deadline', l.lastGoodSentAt + this.#o.renewDeadlineMs - now, () => this.#checkDeadline());
    this.#timer(
      'renew',
      Math.max(0, l.lastGoodSentAt + this.#o.renewIntervalMs - now),
      () => void this.#renew(),
    );
  }

  #checkDeadline(): void {
    const l = this.#lease;
    if (this.#state !== ElectionState.Leader || !l) return;
    const left = l.lastGoodSentAt + this.#o.renewDeadlineMs - this.#clock.now();
    if (left <= 0) {
      return this.#lose(
        LostReason.RenewDeadline,
        `no successful renew within ${this.#o.renewDeadlineMs} ms of sending the last one`,
      );
    }
    this.#timer('deadline', left, () => this.#checkDeadline());
  }

  async #renew(): Promise<void> {
    const l = this.#lease;
    if (this.#state !== ElectionState.Leader || !l || l.renewing) return;
    // Past the deadline (a process resumed after SIGSTOP runs its renew timer before its deadline timer): a
    // renew can no longer keep leadership, and its expected revision may mean another write by now (a
    // recreated bucket reuses revisions). Demote instead of writing.
    if (this.#clock.now() >= l.lastGoodSentAt + this.#o.renewDeadlineMs) return this.#checkDeadline();
    l.renewing = true;
    const sentAt = this.#clock.now();
    const timeoutMs = Math.max(
      1,
      Math.min(this.#o.opTimeoutMs, l.lastGoodSentAt + this.#o.renewDeadlineMs - sentAt),
    );
    try {
      const revision = await withTimeout(
        this.#store.put(l.record, l.revision, timeoutMs),
        timeoutMs,
        'lease renew',
        this.#clock,
      );
      l.renewing = false;
      if (this.#lease !== l || this.#state !== ElectionState.Leader) return;
      l.revision = revision;
      l.lastGoodSentAt = Math.max(l.lastGoodSentAt, sentAt);
      this.#note({ revision, record: l.record });
      const latencyMs = this.#clock.now() - sentAt;
      this.#metrics.transition('renew', latencyMs / 1000);
      this.#scheduleLeaderTimers();
      const deadline = l.lastGoodSentAt + this.#o.renewDeadlineMs;
      this.#emit('renewed', { epoch: l.epoch, revision, latencyMs, sentAt, deadline });
    } catch (err) {
      l.renewing = false;
      if (this.#lease !== l || this.#state !== ElectionState.Leader) return;
      if (err instanceof LeaseConflictError) return this.#onRenewConflict(l);
      this.#emit('error', { op: 'renew', error: err as Error });
      // Retry soon; the deadline timer demotes if nothing succeeds in time.
      this.#timer('renew', Math.max(1, Math.round(this.#o.renewIntervalMs / 4)), () => void this.#renew());
    }
  }

  async #onRenewConflict(l: Lease): Promise<void> {
    // A renew whose reply timed out may have landed: if the entry is still our grant, adopt its revision
    // (keeping the deadline of the last renew we know succeeded) and renew again.
    let e: LeaseEntry | null = null;
    try {
      e = await withTimeout(
        this.#store.get(this.#o.opTimeoutMs),
        this.#o.opTimeoutMs,
        'lease read',
        this.#clock,
      );
    } catch (err) {
      this.#emit('error', { op: 'get', error: err as Error });
    }
    if (this.#lease !== l || this.#state !== ElectionState.Leader) return;
    if (e?.record && e.record.instance === this.#instance && e.record.epoch === l.epoch) {
      l.revision = e.revision;
      this.#note(e);
      return void this.#renew();
    }
    if (e) this.#note(e);
    this.#lose(LostReason.LeaseTaken, e?.record ? `now held by ${e.record.holder}` : 'lease changed');
  }

  #endLeadership(): void {
    this.#watchLease(true);
    // Back to a follower's reads (a leader's next one may be half a renew interval away).
    if (this.#timers.has('poll')) this.#timer('poll', this.#o.pollIntervalMs, () => void this.#poll());
    this.#clearTimer('renew');
    this.#clearTimer('deadline');
    this.#stopLiveness?.();
    this.#stopLiveness = undefined;
    this.#lease = undefined;
  }

  #lose(reason: LostReasonValue, detail: string): void {
    const l = this.#lease;
    if (this.#state !== ElectionState.Leader || !l) return;
    this.#endLeadership();
    this.#setState(ElectionState.Follower);
    this.#contendingSince = this.#clock.now();
    this.#metrics.transition('lost', (this.#clock.now() - l.lastGoodSentAt) / 1000);
    this.#log.warn('leadership lost', { epoch: l.epoch, reason, detail });
    this.#emit('lost', { epoch: l.epoch, reason, detail });
    // Forget the revision so that the current entry is looked at afresh (own record → reacquire, another
    // holder → a full TTL from now).
    this.#obs = { ...this.#obs, since: this.#clock.now() };
    // A fenced grant is not ours to take back: with a new instance id its record looks foreign (TTL wait).
    if (reason === LostReason.Fenced) this.#instance = randomBytes(6).toString('base64url');
    this.#contend();
  }
}

/** The async iterator behind {@link Election.watch}. Keeps at most 100 undelivered changes. */
class WatchImpl implements LeaderWatch {
  readonly #queue: LeaderInfo[] = [];
  readonly #waiters: Array<(r: IteratorResult<LeaderInfo>) => void> = [];
  readonly #onStop: () => void;
  #done = false;

  constructor(onStop: () => void) {
    this.#onStop = onStop;
  }

  push(info: LeaderInfo): void {
    if (this.#done) return;
    const w = this.#waiters.shift();
    if (w) return w({ value: info, done: false });
    this.#queue.push(info);
    if (this.#queue.length > 100) this.#queue.shift();
  }

  stop(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onStop();
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<LeaderInfo> {
    return {
      next: () => {
        const v = this.#queue.shift();
        if (v) return Promise.resolve({ value: v, done: false });
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.#waiters.push(r));
      },
      return: () => {
        this.stop();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
