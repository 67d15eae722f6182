// An in-process lease store for fake-clock tests and the R16 simulation (not used at run time).
import { ClosableResource, type Clock } from '@gc/core';
import { LeaseConflictError } from './errors.js';
import type { LeaseEntry, LeaseStore, ProbeResult } from './store.js';
import type { LeaseRecord } from './types.js';

interface MemoryLink {
  cut: boolean;
  latencyMs: number;
  replyLatencyMs: number;
  reconnect: Set<() => void>;
}

/**
 * An in-process lease key with the same compare-and-set, watch and liveness semantics as the NATS KV store,
 * driven by a {@link Clock}, with per-node fault injection: `cut` (requests hang, watch deliveries and
 * liveness answers stop, like a severed link; `heal` reconnects), request latency and reply latency, and
 * server-side faults: {@link MemoryLeaseBackend.deleteUnannounced} (a deletion nobody in the election wrote),
 * {@link MemoryLeaseBackend.markerAfterNextUpdate} (nats-server's per-key TTL marker racing a takeover),
 * {@link MemoryLeaseBackend.recreate} and {@link MemoryLeaseBackend.restart} (which may lose the last writes).
 * For unit tests of timing logic on a fake clock; `src/store.contract.test.ts` proves it behaves like KV.
 */
export class MemoryLeaseBackend {
  /** The clock that drives latencies. */
  readonly clock: Clock;
  #seq = 0;
  #current: LeaseEntry | null = null;
  #markerAfterUpdate = false;
  /** Entries stored since the bucket was (re)created, with the clock time they were stored (for `restart`). */
  #stored: Array<{ at: number; entry: LeaseEntry }> = [];
  readonly #watchers = new Set<{ link: MemoryLink; fn: (e: LeaseEntry) => void }>();
  readonly #responders = new Set<{ link: MemoryLink; epoch: () => number }>();
  /** Every write applied, in order (for history checks in tests). */
  readonly writes: Array<{ at: number; entry: LeaseEntry }> = [];

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** The current entry (for assertions). */
  current(): LeaseEntry | null {
    return this.#current;
  }

  /** Simulates deleting and recreating the bucket: the key and the revision counter are gone. */
  recreate(): void {
    this.#current = null;
    this.#seq = 0;
    this.#stored = [];
  }

  /**
   * Simulates a server restart (links are cut and healed by the caller; see `src/simulation.ts`). With
   * `loseWritesAfter`, the writes stored after that clock time are lost — acknowledged but not yet flushed,
   * as a SIGKILLed nats-server with an R1 file store can lose them: the key and the revision counter go
   * back to the last write before them, so later writes reuse their revisions. Every watcher then gets the
   * current entry, as a watch restarted after the restart would. Returns the number of writes lost.
   */
  restart(opts: { loseWritesAfter?: number } = {}): number {
    let lost = 0;
    const after = opts.loseWritesAfter;
    if (after !== undefined) {
      while (this.#stored.length > 0 && this.#stored[this.#stored.length - 1]!.at > after) {
        this.#stored.pop();
        lost++;
      }
      if (lost > 0) {
        const last = this.#stored[this.#stored.length - 1]?.entry ?? null;
        this.#current = last;
        this.#seq = last?.revision ?? 0;
      }
    }
    const cur = this.#current;
    if (cur) for (const w of this.#watchers) if (!w.link.cut) w.fn(cur);
    return lost;
  }

  /**
   * Appends a deletion that no election node wrote and that carries no release record, whatever the
   * current revision (a KV purge or delete by an operator, or a server delete marker). Returns its revision.
   */
  deleteUnannounced(): number {
    const e: LeaseEntry = { revision: ++this.#seq, record: null };
    this.#set(e);
    return e.revision;
  }

  /**
   * Reproduces nats-server's per-key TTL race (issue 18): the next successful update of an existing
   * revision (a renew or a takeover) is followed at once by a delete marker that removes it, before any
   * watcher is told about the update — watchers see only the marker, the writer gets its success reply.
   * `markerAfterNextUpdate(false)` disarms it.
   */
  markerAfterNextUpdate(armed = true): void {
    this.#markerAfterUpdate = armed;
  }

  /** A store handle for one node. */
  connect(name = 'mem'): MemoryLeaseStore {
    return new MemoryLeaseStore(this, name);
  }

  /** @internal */
  apply(entry: Omit<LeaseEntry, 'revision'>, expected: number): number {
    const last = this.#current?.revision ?? 0;
    if (last !== expected) throw new LeaseConflictError('memory', expected);
    const e: LeaseEntry = { ...entry, revision: ++this.#seq };
    if (this.#markerAfterUpdate && expected > 0 && e.record) {
      this.#markerAfterUpdate = false;
      this.writes.push({ at: this.clock.now(), entry: e });
      this.deleteUnannounced();
      return e.revision;
    }
    this.#set(e);
    return e.revision;
  }

  #set(e: LeaseEntry): void {
    this.#current = e;
    this.#stored.push({ at: this.clock.now(), entry: e });
    this.writes.push({ at: this.clock.now(), entry: e });
    for (const w of this.#watchers) if (!w.link.cut) w.fn(e);
  }

  /** @internal */
  addWatcher(w: { link: MemoryLink; fn: (e: LeaseEntry) => void }): () => void {
    this.#watchers.add(w);
    return () => this.#watchers.delete(w);
  }

  /** @internal */
  addResponder(r: { link: MemoryLink; epoch: () => number }): () => void {
    this.#responders.add(r);
    return () => this.#responders.delete(r);
  }

  /** @internal */
  responder(): { link: MemoryLink; epoch: () => number } | undefined {
    for (const r of this.#responders) if (!r.link.cut) return r;
    return undefined;
  }
}

/** One node's handle on a {@link MemoryLeaseBackend}. */
export class MemoryLeaseStore extends ClosableResource implements LeaseStore {
  readonly name: string;
  readonly #b: MemoryLeaseBackend;
  readonly #link: MemoryLink = { cut: false, latencyMs: 0, replyLatencyMs: 0, reconnect: new Set() };
  readonly #stops = new Set<() => void>();
  readonly #clock: Clock;

  constructor(backend: MemoryLeaseBackend, name: string) {
    super();
    this.#b = backend;
    this.name = name;
    this.#clock = backend.clock;
  }

  /** Severs this node's link: requests hang, watch deliveries and liveness answers stop. */
  cut(): void {
    this.#link.cut = true;
  }
  /** Restores the link; a cut link counts as a reconnect ({@link LeaseStore.onReconnect} listeners run). */
  heal(): void {
    const wasCut = this.#link.cut;
    this.#link.cut = false;
    if (wasCut) for (const fn of [...this.#link.reconnect]) fn();
  }
  /** Delay before a request reaches the store, and before its reply comes back, in ms. */
  setLatency(latencyMs: number, replyLatencyMs = latencyMs): void {
    this.#link.latencyMs = latencyMs;
    this.#link.replyLatencyMs = replyLatencyMs;
  }

  async #roundTrip<T>(fn: () => T): Promise<T> {
    if (this.#link.cut) return new Promise<T>(() => undefined);
    if (this.#link.latencyMs) await this.#clock.sleep(this.#link.latencyMs);
    if (this.#link.cut) return new Promise<T>(() => undefined);
    let result: T;
    try {
      result = fn();
    } catch (err) {
      if (this.#link.replyLatencyMs) await this.#clock.sleep(this.#link.replyLatencyMs);
      throw err;
    }
    if (this.#link.replyLatencyMs) await this.#clock.sleep(this.#link.replyLatencyMs);
    if (this.#link.cut) return new Promise<T>(() => undefined);
    return result;
  }

  get(): Promise<LeaseEntry | null> {
    return this.#roundTrip(() => this.#b.current());
  }

  put(record: LeaseRecord, expectedRevision: number): Promise<number> {
    return this.#roundTrip(() => this.#b.apply({ record: { ...record } }, expectedRevision));
  }

  async delete(expectedRevision: number, record: LeaseRecord): Promise<void> {
    await this.#roundTrip(() =>
      this.#b.apply({ record: null, releasedEpoch: record.epoch }, expectedRevision),
    );
  }

  watch(onEntry: (e: LeaseEntry) => void): () => void {
    // Like a KV watch: the value current when the watch starts, then every change, in revision order.
    let delivered = false;
    queueMicrotask(() => {
      const cur = this.#b.current();
      if (cur && !delivered && !this.#link.cut) {
        delivered = true;
        onEntry(cur);
      }
    });
    const off = this.#b.addWatcher({
      link: this.#link,
      fn: (e) => {
        delivered = true;
        onEntry(e);
      },
    });
    const stop = () => {
      off();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  serveLiveness(epoch: () => number): () => void {
    const off = this.#b.addResponder({ link: this.#link, epoch });
    const stop = () => {
      off();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  probe(): Promise<ProbeResult> {
    if (this.#link.cut) return Promise.resolve({ kind: 'unknown' });
    const r = this.#b.responder();
    return Promise.resolve(r ? { kind: 'alive', epoch: r.epoch() } : { kind: 'absent' });
  }

  onReconnect(listener: () => void): () => void {
    this.#link.reconnect.add(listener);
    const stop = () => {
      this.#link.reconnect.delete(listener);
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  protected closeResources(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    return Promise.resolve();
  }
}
