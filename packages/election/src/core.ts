// The state an election keeps (options, store, clock, the lease held, the last observation, timers) and
// the plumbing every part of it uses: events, state changes, named timers, epochs seen, the lease watch and
// reads. The decisions build on it: follower.ts (observe, acquire), leader.ts (renew, lose), election.ts.
import { randomBytes } from 'node:crypto';
import {
  ClosableResource,
  memoryEpochStore,
  withTimeout,
  type Clock,
  type Epoch,
  type EpochStore,
  type Logger,
  type TimerHandle,
} from '@gc/core';
import { electionMetrics, type ElectionMetrics } from './metrics.js';
import type { LeaseEntry, LeaseStore } from './store.js';
import {
  ElectionState,
  LostReason,
  type ElectionEvent,
  type ElectionEventName,
  type ElectionEvents,
  type ElectionOptions,
  type ElectionStateValue,
  type LeaderInfo,
  type LeaseRecord,
  type LostReasonValue,
} from './types.js';
import type { WatchImpl } from './watch.js';

type Listener = (data: never) => void;

export interface Lease {
  epoch: Epoch;
  revision: number;
  record: LeaseRecord;
  /** Clock time at which the last renew (or the grant) that succeeded was sent. */
  lastGoodSentAt: number;
  renewing: boolean;
}

/**
 * The election's state and plumbing, shared by the follower and leader logic that extend it. Members the
 * other parts use are `protected`; the rest stay `#private`.
 */
export abstract class ElectionCore extends ClosableResource {
  readonly nodeId: string;
  protected readonly o: ElectionOptions;
  protected readonly store: LeaseStore;
  protected readonly clock: Clock;
  protected readonly log: Logger;
  readonly #epochs: EpochStore;
  protected readonly metrics: ElectionMetrics;
  /** Marks this node's grants; renewed after a step-down or fencing so that it does not take back its old record. */
  protected instance = randomBytes(6).toString('base64url');
  readonly #listeners = new Map<ElectionEventName, Set<Listener>>();
  protected readonly timers = new Map<string, TimerHandle>();
  protected readonly watches = new Set<WatchImpl>();

  #state: ElectionStateValue = ElectionState.Starting;
  protected highest: Epoch;
  /**
   * Last observed entry, the clock time its revision was first seen, and whether it is a deletion that its
   * holder announced (a step-down's release record).
   */
  protected obs: { revision: number; record: LeaseRecord | null; since: number; released: boolean } = {
    revision: -1,
    record: null,
    since: 0,
    released: false,
  };
  /**
   * Clock time this node's link to the store was last (re)established (creation, then every reconnect).
   * Fast failover ignores "no responders" until `renewDeadlineMs` after it: a live holder may not have
   * re-subscribed yet after a server restart, and a holder that has not is past its deadline by then.
   */
  protected connectedAt: number;
  protected leaderInfo: LeaderInfo = { holder: null, epoch: 0, revision: 0 };
  protected lease: Lease | undefined;
  protected started = false;
  /** False for an observer (`observeOnly`, or `setCandidate(false)`): never contends. */
  protected candidate: boolean;
  protected contendingSince: number;
  protected noResponders = 0;
  #stopWatch: (() => void) | undefined;
  protected stopLiveness: (() => void) | undefined;

  constructor(store: LeaseStore, o: ElectionOptions) {
    super();
    this.o = o;
    this.nodeId = o.nodeId;
    this.store = store;
    this.clock = o.clock;
    this.log = o.logger.child({ election: `${o.bucket}/${o.key}`, node: o.nodeId });
    this.#epochs = o.epochStore ?? memoryEpochStore();
    this.highest = this.#epochs.load();
    this.metrics = electionMetrics(o.registry, { bucket: o.bucket, key: o.key, node: o.nodeId });
    this.contendingSince = this.clock.now();
    this.connectedAt = this.clock.now();
    this.candidate = !o.observeOnly;
  }

  state(): ElectionStateValue {
    return this.#state;
  }

  isLeader(): boolean {
    const l = this.lease;
    return (
      this.#state === ElectionState.Leader &&
      l !== undefined &&
      this.clock.now() < l.lastGoodSentAt + this.o.renewDeadlineMs &&
      l.epoch >= this.highest
    );
  }

  on<E extends ElectionEventName>(event: E, listener: (data: ElectionEvents[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  onEvent(listener: (event: ElectionEvent) => void): () => void {
    this.#allListeners.add(listener);
    return () => this.#allListeners.delete(listener);
  }
  readonly #allListeners = new Set<(event: ElectionEvent) => void>();

  // ----- internals --------------------------------------------------------------------------------------

  /**
   * Followers and observers watch the lease key; a leader does not: every renew would come back to it through
   * its own watch, which costs about 15 % of renew latency (see `bench/renew.ts`). A leader learns that its
   * lease changed from its next renew (CAS) or poll, whichever comes first.
   */
  protected watchLease(on: boolean): void {
    if (!on || this.closing || this.#state === ElectionState.Closed) {
      this.#stopWatch?.();
      this.#stopWatch = undefined;
      return;
    }
    this.#stopWatch ??= this.store.watch(
      (e) => this.observe(e),
      (err) => this.emit('error', { op: 'watch', error: err }),
    );
  }

  protected emit<E extends ElectionEventName>(event: E, data: ElectionEvents[E]): void {
    if (event === 'error') {
      const { op, error } = data as ElectionEvents['error'];
      this.log.debug('election store operation failed', { op, error });
    }
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (fn as (d: ElectionEvents[E]) => void)(data);
      } catch (err) {
        this.log.error('election event listener threw', { event, error: err });
      }
    }
    if (this.#allListeners.size === 0) return;
    const all = { type: event, ...data } as ElectionEvent;
    for (const fn of [...this.#allListeners]) {
      try {
        fn(all);
      } catch (err) {
        this.log.error('election event listener threw', { event, error: err });
      }
    }
  }

  protected setState(to: ElectionStateValue): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.metrics.state(to);
    this.emit('state', { from, to });
  }

  protected timer(name: string, ms: number, fn: () => void): void {
    this.clearTimer(name);
    if (this.#state === ElectionState.Closed) return;
    const h = this.clock.setTimeout(() => {
      this.timers.delete(name);
      fn();
    }, ms);
    this.timers.set(name, h);
  }

  protected clearTimer(name: string): void {
    const h = this.timers.get(name);
    if (h) this.clock.clearTimeout(h);
    this.timers.delete(name);
  }

  protected seeEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch <= this.highest) return;
    this.highest = epoch;
    this.#epochs.save(epoch);
    const l = this.lease;
    if (this.#state === ElectionState.Leader && l && l.epoch < epoch) {
      this.lose(LostReason.Fenced, `epoch ${epoch} seen while leading with ${l.epoch}`);
    }
  }

  protected async poll(): Promise<void> {
    if (this.#state === ElectionState.Closed) return;
    try {
      const e = await withTimeout(
        this.store.get(this.o.opTimeoutMs),
        this.o.opTimeoutMs,
        'lease read',
        this.clock,
      );
      this.observe(e ?? { revision: 0, record: null });
    } catch (err) {
      this.emit('error', { op: 'get', error: err as Error });
    }
    this.timer('poll', this.#pollEvery(), () => void this.poll());
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
      ? Math.max(this.o.pollIntervalMs, Math.round(this.o.renewIntervalMs / 2))
      : this.o.pollIntervalMs;
  }

  /** Acts on an entry of the lease key, from the watch or a read (follower.ts). */
  protected abstract observe(e: LeaseEntry): void;

  /** Ends this node's leadership (leader.ts). */
  protected abstract lose(reason: LostReasonValue, detail: string): void;
}
