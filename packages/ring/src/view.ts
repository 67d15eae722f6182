import { ClosedError, PushQueue, type Clock, type Logger, type TimerHandle } from '@gc/core';
import type { RouteRetry } from '@gc/rpc';
import type { KV, KvEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { HoldBufferFullError, PartitionUnavailableError, RingStoreError } from './errors.js';
import { partitionOfKey } from './hash.js';
import type { RingMetrics } from './metrics.js';
import {
  parseMapRecord,
  parseMemberRecord,
  parsePartitionRecord,
  parsePinsRecord,
  unfence,
  type MapRecord,
  type RingNames,
} from './records.js';
import type {
  MemberRecord,
  PartitionRecord,
  PartitionStateValue,
  RingSnapshot,
  RingWatcher,
} from './types.js';

/** Partition record states as small integers in the view's tables. */
export const S_NONE = 0;
export const S_OWNING = 1;
export const S_OWNED = 2;
export const S_RELEASED = 3;
const STATE_CODE: Record<PartitionStateValue, number> = {
  owning: S_OWNING,
  owned: S_OWNED,
  released: S_RELEASED,
};
const STATE_NAME: (PartitionStateValue | null)[] = [null, 'owning', 'owned', 'released'];

/** A member in the view, with when this node first saw its current revision (monotonic ms). */
export interface ViewMember {
  record: MemberRecord;
  revision: number;
  seenAt: number;
}

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

/** Callbacks of the member that owns the view. */
export interface ViewListener {
  record?(p: number): void;
  member?(id: string, previous: ViewMember | undefined): void;
  map?(): void;
  pins?(): void;
  coordinator?(): void;
}

export interface ViewOptions {
  names: RingNames;
  partitions: number;
  clock: Clock;
  logger: Logger;
  holdTimeoutMs: number;
  maxHeldCalls: number;
  metrics: RingMetrics;
  listener?: ViewListener;
}

/**
 * One node's view of an app's ring bucket, kept by a single watch of the whole bucket (so records of one
 * key never overtake those of another: the stream is in write order). Holds the routing tables: the serving
 * owner per partition as an index into an interned node-name list, so `ownerOf(key)` is a hash and two
 * array reads, allocation-free.
 */
export class RingView {
  readonly partitions: number;
  readonly names: RingNames;
  /** Index into `nodeNames` of the owner named by each partition record, -1 for none. */
  readonly recOwner: Int32Array;
  /** Serving owner per partition (`owned` records only), -1 otherwise: the routing table. */
  readonly serving: Int32Array;
  readonly state: Uint8Array;
  readonly epoch: Float64Array;
  readonly revision: Float64Array;
  readonly instance: string[];
  /** The coordinator map's target per partition (index into `nodeNames`), -1 for none. */
  readonly target: Int32Array;
  readonly nodeNames: string[] = [];
  readonly #nodeIndex = new Map<string, number>();
  readonly members = new Map<string, ViewMember>();
  map: MapRecord | null = null;
  mapRevision = 0;
  pinsRevision = 0;
  pins = new Map<number, string>();
  coordinator: string | null = null;
  /** Increases with every change seen. */
  version = 0;
  /** Highest epoch seen per partition (survives a record this node cannot read). */
  readonly highEpoch: Float64Array;
  readonly #o: ViewOptions;
  readonly #waiters = new Map<number, Set<Waiter>>();
  #held = 0;
  readonly #watchers = new Set<PushQueue<RingSnapshot>>();
  #watcherTimer: TimerHandle | undefined;
  #lastSeq = 0;
  #stop: (() => void) | undefined;
  #closed = false;
  #loaded!: Promise<void>;
  #markLoaded: (() => void) | undefined;
  #sweep: TimerHandle | undefined;

  constructor(o: ViewOptions) {
    this.#o = o;
    this.names = o.names;
    const P = (this.partitions = o.partitions);
    this.recOwner = new Int32Array(P).fill(-1);
    this.serving = new Int32Array(P).fill(-1);
    this.target = new Int32Array(P).fill(-1);
    this.state = new Uint8Array(P);
    this.epoch = new Float64Array(P);
    this.highEpoch = new Float64Array(P);
    this.revision = new Float64Array(P);
    this.instance = new Array<string>(P).fill('');
  }

  get held(): number {
    return this.#held;
  }

  nodeIndex(id: string): number {
    let i = this.#nodeIndex.get(id);
    if (i === undefined) {
      i = this.nodeNames.length;
      this.nodeNames.push(id);
      this.#nodeIndex.set(id, i);
    }
    return i;
  }

  /** Starts the watch; resolves once every record that existed at the start has been seen. */
  async start(kv: KV): Promise<void> {
    let last = 0;
    try {
      last = (await kv.status()).streamInfo.state.last_seq;
    } catch (err) {
      throw new RingStoreError('status', this.names.bucket, { cause: err });
    }
    this.#loaded = new Promise<void>((resolve) => {
      this.#markLoaded = resolve;
    });
    if (last === 0) this.#loadedNow();
    const loadedAt = last;
    let first: QueuedIterator<KvEntry> | undefined;
    try {
      first = await kv.watch();
    } catch (err) {
      throw new RingStoreError('watch', this.names.bucket, { cause: err });
    }
    let stopped = false;
    let current: { stop(): void } | undefined = first;
    const run = async () => {
      let w: QueuedIterator<KvEntry> | undefined = first;
      while (!stopped) {
        try {
          w ??= await kv.watch(this.#lastSeq > 0 ? { resumeFromRevision: this.#lastSeq + 1 } : {});
          current = w;
          if (stopped) {
            w.stop();
            break;
          }
          for await (const e of w) {
            this.observe(e);
            if (e.revision >= loadedAt) this.#loadedNow();
          }
        } catch (err) {
          if (!stopped)
            this.#o.logger.warn('ring watch failed; resuming', { bucket: this.names.bucket, err });
        }
        w = undefined;
        if (!stopped) await this.#o.clock.sleep(250).catch(() => undefined);
      }
    };
    void run();
    this.#stop = () => {
      stopped = true;
      current?.stop();
    };
    await this.#loaded;
  }

  #loadedNow(): void {
    this.#markLoaded?.();
    this.#markLoaded = undefined;
  }

  /** Applies one KV entry (from the watch, or a read or write of this node). Older revisions are ignored. */
  observe(e: KvEntry): void {
    if (e.revision > this.#lastSeq) this.#lastSeq = e.revision;
    const key = e.key;
    const put = e.operation === 'PUT';
    if (key.startsWith(this.names.partitionPrefix)) {
      const p = Number(key.slice(this.names.partitionPrefix.length));
      if (!Number.isInteger(p) || p < 0 || p >= this.partitions) return;
      const rec = put ? parsePartitionRecord(e.value) : null;
      this.applyRecord(p, rec, e.revision);
    } else if (key.startsWith(this.names.memberPrefix)) {
      const id = key.slice(this.names.memberPrefix.length);
      const prev = this.members.get(id);
      if (prev && prev.revision >= e.revision) return;
      const rec = put ? parseMemberRecord(e.value) : null;
      if (rec && rec.nodeId === id)
        this.members.set(id, { record: rec, revision: e.revision, seenAt: this.#o.clock.now() });
      else if (!prev) return;
      else this.members.delete(id);
      this.#changed();
      this.#wakeProbes(id);
      this.#o.listener?.member?.(id, prev);
    } else if (key === this.names.map) {
      if (e.revision <= this.mapRevision) return;
      const rec = put ? parseMapRecord(unfence(e.value)) : null;
      this.mapRevision = e.revision;
      if (!rec || rec.assign.length !== this.partitions) return;
      if (this.map && rec.version < this.map.version) return;
      this.map = rec;
      const idx = rec.nodes.map((n) => this.nodeIndex(n));
      for (let p = 0; p < this.partitions; p++) {
        const a = rec.assign[p]!;
        this.target[p] = a >= 0 && a < idx.length ? idx[a]! : -1;
      }
      this.#changed();
      this.#o.listener?.map?.();
    } else if (key === this.names.pins) {
      if (e.revision <= this.pinsRevision) return;
      this.pinsRevision = e.revision;
      const rec = put ? parsePinsRecord(e.value) : null;
      this.pins = new Map(Object.entries(rec?.pins ?? {}).map(([k, v]) => [Number(k), v]));
      this.#changed();
      this.#o.listener?.pins?.();
    } else if (key === this.names.coordinator) {
      let holder: string | null = null;
      if (put) {
        try {
          const r = JSON.parse(new TextDecoder().decode(e.value)) as { holder?: unknown };
          holder = typeof r.holder === 'string' ? r.holder : null;
        } catch {
          holder = null;
        }
      }
      if (holder !== this.coordinator) {
        this.coordinator = holder;
        this.#changed();
        this.#o.listener?.coordinator?.();
      }
    }
  }

  /** Applies a partition record at `revision` (null: deleted or unreadable). */
  applyRecord(p: number, rec: PartitionRecord | null, revision: number): void {
    if (revision <= this.revision[p]!) return;
    this.revision[p] = revision;
    if (rec) {
      const i = this.nodeIndex(rec.owner);
      this.recOwner[p] = i;
      this.state[p] = STATE_CODE[rec.state];
      this.epoch[p] = rec.epoch;
      if (rec.epoch > this.highEpoch[p]!) this.highEpoch[p] = rec.epoch;
      this.instance[p] = rec.instance;
      this.serving[p] = rec.state === 'owned' ? i : -1;
    } else {
      this.recOwner[p] = -1;
      this.state[p] = S_NONE;
      this.serving[p] = -1;
      this.instance[p] = '';
    }
    this.#changed();
    this.#wake(p);
    this.#o.listener?.record?.(p);
  }

  /** The current record of `p` as a value (null: none). */
  record(p: number): PartitionRecord | null {
    const s = this.state[p]!;
    if (s === S_NONE) return null;
    return {
      v: 1,
      owner: this.nodeNames[this.recOwner[p]!]!,
      instance: this.instance[p]!,
      epoch: this.epoch[p]!,
      state: STATE_NAME[s]!,
      at: 0,
    };
  }

  /** True when `nodeId`'s live member record has `instance`. */
  isLive(nodeId: string, instance: string): boolean {
    return this.members.get(nodeId)?.record.instance === instance;
  }

  /** The serving owner of `key` (allocation-free). */
  ownerOf(key: string): string | undefined {
    const i = this.serving[partitionOfKey(key, this.partitions)]!;
    return i < 0 ? undefined : this.nodeNames[i];
  }

  targetOf(p: number): string | undefined {
    const i = this.target[p]!;
    return i < 0 ? undefined : this.nodeNames[i];
  }

  /**
   * The node to send a call for `key` to. Fast path: the serving owner. While the partition moves, or after
   * `previous` (the node the last attempt went to refused it or was gone), the call is held until the
   * partition has a serving owner with a newer record than the one that failed.
   */
  route(app: string, key: string, previous?: RouteRetry): string | Promise<string> {
    if (this.#closed) throw new ClosedError(`ring router of ${app}`);
    const p = partitionOfKey(key, this.partitions);
    let threshold = 0;
    let probe: Waiter['probe'];
    if (previous) {
      const r = (previous.error as { revision?: unknown }).revision;
      if (typeof r === 'number') threshold = r;
      const cur = this.recOwner[p]!;
      if (cur >= 0 && this.nodeNames[cur] === previous.node) {
        threshold = Math.max(threshold, this.revision[p]!);
        const member = this.members.get(previous.node);
        // No answer at all, or a refusal that names no record revision (the node's admission was not set
        // up yet): nothing in the ring will change, so retry once the node proves alive by renewing.
        const code = (previous.error as { code?: unknown }).code;
        const transient =
          code === 'GC_RPC_NO_INSTANCE' || (code === 'GC_RPC_NOT_OWNER' && typeof r !== 'number');
        if (transient && member) probe = { node: previous.node, memberRevision: member.revision };
      }
    }
    const i = this.serving[p]!;
    if (i >= 0 && this.revision[p]! > threshold) return this.nodeNames[i]!;
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
    const s = this.state[p]!;
    if (s === S_NONE) return 'never owned';
    const owner = this.nodeNames[this.recOwner[p]!];
    const t = this.targetOf(p);
    return `record ${STATE_NAME[s]} by ${owner} at epoch ${this.epoch[p]}${t && t !== owner ? `, moving to ${t}` : ''}`;
  }

  #unhold(p: number, w: Waiter): void {
    const set = this.#waiters.get(p);
    if (set?.delete(w)) {
      this.#held--;
      this.#o.metrics.held(this.#held);
      if (set.size === 0) this.#waiters.delete(p);
    }
  }

  #wake(p: number): void {
    const set = this.#waiters.get(p);
    if (!set) return;
    const i = this.serving[p]!;
    if (i < 0) return;
    const rev = this.revision[p]!;
    for (const w of [...set]) if (rev > w.threshold) w.resolve(this.nodeNames[i]!);
  }

  #wakeProbes(node: string): void {
    if (this.#held === 0) return;
    const m = this.members.get(node);
    if (!m) return;
    for (const [p, set] of [...this.#waiters]) {
      const i = this.serving[p]!;
      if (i < 0 || this.nodeNames[i] !== node) continue;
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

  /** Partitions served per node. */
  counts(): Map<string, number> {
    const c = new Map<string, number>();
    for (let p = 0; p < this.partitions; p++) {
      const i = this.serving[p]!;
      if (i >= 0) {
        const n = this.nodeNames[i]!;
        c.set(n, (c.get(n) ?? 0) + 1);
      }
    }
    return c;
  }

  snapshot(platform: string, app: string, self: string | undefined): RingSnapshot {
    const owners: (string | null)[] = [];
    const states: (PartitionStateValue | null)[] = [];
    const epochs: number[] = [];
    const targets: (string | null)[] = [];
    const moving: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const s = this.serving[p]!;
      owners.push(s < 0 ? null : this.nodeNames[s]!);
      states.push(STATE_NAME[this.state[p]!]!);
      epochs.push(this.epoch[p]!);
      const t = this.targetOf(p) ?? null;
      targets.push(t);
      if (t !== null && t !== owners[p]) moving.push(p);
    }
    const counts = this.counts();
    return {
      platform,
      app,
      partitions: this.partitions,
      version: this.version,
      owners,
      states,
      epochs,
      targets,
      counts: Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : 1))),
      moving,
      members: [...this.members.values()]
        .map((m) => ({
          nodeId: m.record.nodeId,
          instance: m.record.instance,
          weight: m.record.weight,
          state: m.record.state,
          ttlMs: m.record.ttlMs,
          startedAt: m.record.startedAt,
          partitions: counts.get(m.record.nodeId) ?? 0,
          self: m.record.nodeId === self,
        }))
        .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1)),
      coordinator: this.coordinator,
      pins: Object.fromEntries(this.pins),
      mapVersion: this.map?.version ?? 0,
    };
  }

  /** Snapshots on change, coalesced over 20 ms, the current one first. */
  watch(platform: string, app: string, self: string | undefined): RingWatcher {
    const q = new PushQueue<RingSnapshot>(() => this.#watchers.delete(q));
    this.#watchers.add(q);
    q.push(this.snapshot(platform, app, self));
    const watcher = Object.assign(q, { stop: () => q.stop() });
    this.#snap = () => this.snapshot(platform, app, self);
    return watcher;
  }

  #snap: (() => RingSnapshot) | undefined;

  #changed(): void {
    this.version++;
    if (this.#watchers.size === 0 || this.#watcherTimer) return;
    this.#watcherTimer = this.#o.clock.setTimeout(() => {
      this.#watcherTimer = undefined;
      if (!this.#snap) return;
      const s = this.#snap();
      for (const q of this.#watchers) q.push(s);
    }, 20);
  }

  /** Stops the watch; held calls fail with ClosedError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop?.();
    if (this.#sweep) this.#o.clock.clearTimeout(this.#sweep);
    if (this.#watcherTimer) this.#o.clock.clearTimeout(this.#watcherTimer);
    for (const set of [...this.#waiters.values()])
      for (const w of [...set]) w.reject(new ClosedError(`ring router of ${this.names.app}`));
    for (const q of [...this.#watchers]) q.stop();
    this.#markLoaded?.();
  }
}
