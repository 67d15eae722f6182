// One node's view of an app's ring bucket: the single watch that keeps the routing tables current,
// routing through them (holding calls while a partition moves) and snapshots for watchers.
import { ClosedError, keepWatching, PushQueue, type Clock, type Logger, type TimerHandle } from '@gc/core';
import type { RouteRetry } from '@gc/rpc';
import type { KV, KvEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { RingStoreError } from './errors.js';
import { HeldCalls } from './hold.js';
import type { RingMetrics } from './metrics.js';
import {
  parseMapRecord,
  parseMemberRecord,
  parsePartitionRecord,
  parsePinsRecord,
  unfence,
  type RingNames,
} from './records.js';
import { RingTables, S_NONE, S_OWNED, S_OWNING, S_RELEASED, type ViewMember } from './tables.js';
import type { PartitionRecord, PartitionStateValue, RingSnapshot, RingWatcher } from './types.js';

const STATE_CODE: Record<PartitionStateValue, number> = {
  owning: S_OWNING,
  owned: S_OWNED,
  released: S_RELEASED,
};

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
 * key never overtake those of another: the stream is in write order). Holds the routing tables
 * (`RingTables`) and the calls waiting for a partition to get a serving owner.
 */
export class RingView extends RingTables {
  readonly #o: ViewOptions;
  readonly #hold: HeldCalls;
  readonly #watchers = new Set<PushQueue<RingSnapshot>>();
  #watcherTimer: TimerHandle | undefined;
  #lastSeq = 0;
  #stop: (() => void) | undefined;
  #closed = false;
  #loaded!: Promise<void>;
  #markLoaded: (() => void) | undefined;

  constructor(o: ViewOptions) {
    super(o.names, o.partitions);
    this.#o = o;
    this.#hold = new HeldCalls(this, o);
  }

  get held(): number {
    return this.#hold.count;
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
    // A new watch resumes after the last record seen.
    this.#stop = keepWatching(
      first,
      () => kv.watch(this.#lastSeq > 0 ? { resumeFromRevision: this.#lastSeq + 1 } : {}),
      (e) => {
        this.observe(e);
        if (e.revision >= loadedAt) this.#loadedNow();
      },
      {
        clock: this.#o.clock,
        logger: this.#o.logger,
        what: 'ring watch',
        fields: { bucket: this.names.bucket },
      },
    );
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
      this.#hold.wakeProbes(id);
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
    this.#hold.wake(p);
    this.#o.listener?.record?.(p);
  }

  /** The node to send a call for `key` to (see `HeldCalls.route`); throws ClosedError once closed. */
  route(app: string, key: string, previous?: RouteRetry): string | Promise<string> {
    if (this.#closed) throw new ClosedError(`ring router of ${app}`);
    return this.#hold.route(app, key, previous);
  }

  /**
   * Snapshots on change, coalesced over 20 ms, the current one first. Live at once: the bucket watch runs
   * since `start()`. Once closed: the last snapshot, then the end.
   */
  watch(platform: string, app: string, self: string | undefined): RingWatcher {
    const q = new PushQueue<RingSnapshot>(() => this.#watchers.delete(q));
    q.push(this.snapshot(platform, app, self));
    // The queue is the watcher (it has stop()). It used to get an own `stop: () => q.stop()`, which called
    // itself: stop() and close() overflowed the stack.
    if (this.#closed) {
      q.stop();
      return q;
    }
    this.#watchers.add(q);
    this.#snap = () => this.snapshot(platform, app, self);
    return q;
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
    if (this.#watcherTimer) this.#o.clock.clearTimeout(this.#watcherTimer);
    this.#hold.close();
    for (const q of [...this.#watchers]) q.stop();
    this.#markLoaded?.();
  }
}
