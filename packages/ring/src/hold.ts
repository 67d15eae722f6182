// Key routing over a view's tables, and the calls held while their partition moves: each waits for a
// serving owner with a newer record (or a sign of life of a silent one) until its hold timeout.
import { ClosedError, type Clock, type TimerHandle } from '@gc/core';
import type { RouteRetry } from '@gc/rpc';
import { HoldBufferFullError, PartitionUnavailableError } from './errors.js';
import { partitionOfKey } from './hash.js';
import type { RingMetrics } from './metrics.js';
import { S_NONE, STATE_NAME, type RingTables } from './tables.js';

interface Waiter {
  threshold: number;
  /**
   * Set when the node the last attempt went to did not answer at all (no responders) although it still
   * owns the partition: a renewal of its member lease (a revision above this one) proves it alive, so the
   * call is sent to it again (its RPC subscription may not have been up yet). A crashed node never renews;
   * its partitions get new records instead.
   */
  probe?: { node: string; memberRevision: number };
  since: number;
  deadline: number;
  resolve: (node: string) => void;
  reject: (err: Error) => void;
}

export interface HoldOptions {
  clock: Clock;
  holdTimeoutMs: number;
  maxHeldCalls: number;
  metrics: RingMetrics;
}

/** The calls a view holds, by partition; woken by the view when a record or a member lease changes. */
export class HeldCalls {
  readonly #t: RingTables;
  readonly #o: HoldOptions;
  readonly #waiters = new Map<number, Set<Waiter>>();
  #held = 0;
  #sweep: TimerHandle | undefined;

  constructor(tables: RingTables, o: HoldOptions) {
    this.#t = tables;
    this.#o = o;
  }

  /** Calls held now. */
  get count(): number {
    return this.#held;
  }

  /**
   * The node to send a call for `key` to. Fast path: the serving owner. While the partition moves, or after
   * `previous` (the node the last attempt went to refused it or was gone), the call is held until the
   * partition has a serving owner with a newer record than the one that failed.
   */
  route(app: string, key: string, previous?: RouteRetry): string | Promise<string> {
    const t = this.#t;
    const p = partitionOfKey(key, t.partitions);
    let threshold = 0;
    let probe: Waiter['probe'];
    if (previous) {
      const r = (previous.error as { revision?: unknown }).revision;
      if (typeof r === 'number') threshold = r;
      const cur = t.recOwner[p]!;
      if (cur >= 0 && t.nodeNames[cur] === previous.node) {
        threshold = Math.max(threshold, t.revision[p]!);
        const member = t.members.get(previous.node);
        // No answer at all, or a refusal that names no record revision (the node's admission was not set
        // up yet): nothing in the ring will change, so retry once the node proves alive by renewing.
        const code = (previous.error as { code?: unknown }).code;
        const transient =
          code === 'GC_RPC_NO_INSTANCE' || (code === 'GC_RPC_NOT_OWNER' && typeof r !== 'number');
        if (transient && member) probe = { node: previous.node, memberRevision: member.revision };
      }
    }
    const i = t.serving[p]!;
    if (i >= 0 && t.revision[p]! > threshold) return t.nodeNames[i]!;
    if (this.#held >= this.#o.maxHeldCalls) throw new HoldBufferFullError(app, this.#o.maxHeldCalls);
    return new Promise<string>((resolve, reject) => {
      const now = this.#o.clock.now();
      const w: Waiter = {
        threshold,
        since: now,
        deadline: now + this.#o.holdTimeoutMs,
        resolve,
        reject,
        ...(probe ? { probe } : {}),
      };
      w.reject = (err) => {
        this.#unhold(p, w);
        reject(err);
      };
      w.resolve = (node) => {
        this.#unhold(p, w);
        resolve(node);
      };
      let set = this.#waiters.get(p);
      if (!set) this.#waiters.set(p, (set = new Set()));
      set.add(w);
      this.#held++;
      this.#o.metrics.held(this.#held);
      this.#armSweep();
      void app;
    }).catch((err: unknown) => {
      if (err instanceof PartitionUnavailableError)
        throw new PartitionUnavailableError(app, p, err.waitedMs, this.#stateText(p));
      throw err;
    });
  }

  #stateText(p: number): string {
    const t = this.#t;
    const s = t.state[p]!;
    if (s === S_NONE) return 'never owned';
    const owner = t.nodeNames[t.recOwner[p]!];
    const target = t.targetOf(p);
    return `record ${STATE_NAME[s]} by ${owner} at epoch ${t.epoch[p]}${target && target !== owner ? `, moving to ${target}` : ''}`;
  }

  #unhold(p: number, w: Waiter): void {
    const set = this.#waiters.get(p);
    if (set?.delete(w)) {
      this.#held--;
      this.#o.metrics.held(this.#held);
      if (set.size === 0) this.#waiters.delete(p);
    }
  }

  /** Releases the calls held for `p` once it has a serving owner with a newer record. */
  wake(p: number): void {
    const set = this.#waiters.get(p);
    if (!set) return;
    const i = this.#t.serving[p]!;
    if (i < 0) return;
    const rev = this.#t.revision[p]!;
    for (const w of [...set]) if (rev > w.threshold) w.resolve(this.#t.nodeNames[i]!);
  }

  /** Releases the calls waiting for `node` to prove alive, once its member lease was renewed. */
  wakeProbes(node: string): void {
    if (this.#held === 0) return;
    const m = this.#t.members.get(node);
    if (!m) return;
    for (const [p, set] of [...this.#waiters]) {
      const i = this.#t.serving[p]!;
      if (i < 0 || this.#t.nodeNames[i] !== node) continue;
      for (const w of [...set])
        if (w.probe?.node === node && m.revision > w.probe.memberRevision) w.resolve(node);
    }
  }

  /** One timer sweeps held calls past their deadline (cheaper than a timer per call). */
  #armSweep(): void {
    if (this.#sweep || this.#held === 0) return;
    this.#sweep = this.#o.clock.setTimeout(() => {
      this.#sweep = undefined;
      const now = this.#o.clock.now();
      for (const [p, set] of [...this.#waiters]) {
        for (const w of [...set]) {
          if (now >= w.deadline) {
            this.#o.metrics.holdTimeout();
            w.reject(new PartitionUnavailableError('', p, now - w.since, ''));
          }
        }
      }
      this.#armSweep();
    }, 25);
  }

  /** Stops the sweep; held calls fail with ClosedError. */
  close(): void {
    if (this.#sweep) this.#o.clock.clearTimeout(this.#sweep);
    for (const set of [...this.#waiters.values()])
      for (const w of [...set]) w.reject(new ClosedError(`ring router of ${this.#t.names.app}`));
  }
}
