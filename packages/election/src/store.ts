import { headers, nuid, type NatsConnection, type Status, type Subscription } from '@nats-io/nats-core';
import { errors as natsErrors } from '@nats-io/nats-core';
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
  type PushConsumer,
} from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { supports, type Clock, type TimerHandle } from '@gc/core';
import { LeaseConflictError, StoreUnavailableError } from './errors.js';
import type { LeaseRecord } from './types.js';

/** One observation of the lease key: its revision and record (null when deleted, purged or expired). */
export interface LeaseEntry {
  revision: number;
  record: LeaseRecord | null;
  /** Epoch carried by a deletion (a step-down writes its record into the delete), else undefined. */
  releasedEpoch?: number;
}

/** Answer of a liveness probe. `absent`: nobody answers (no responders). */
export type ProbeResult = { kind: 'alive'; epoch: number } | { kind: 'absent' } | { kind: 'unknown' };

/**
 * The storage port of the election: a single key with compare-and-set writes. The NATS KV implementation
 * is {@link openKvLeaseStore}; {@link MemoryLeaseBackend} is an in-process implementation with the same
 * CAS semantics for fake-clock unit tests (a shared contract test runs against both).
 */
export interface LeaseStore {
  /** Human-readable location, for messages. */
  readonly name: string;
  /** True when writes carry a per-key TTL that the server enforces (nats-server ≥ 2.11 and a bucket that allows it). */
  readonly perKeyTtl: boolean;
  /** The current entry, or null when the key has no entry at all. */
  get(timeoutMs: number): Promise<LeaseEntry | null>;
  /**
   * Writes `record` if the key's last revision is `expectedRevision` (0: the key has no entry). Returns the
   * new revision; throws {@link LeaseConflictError} when the revision differs.
   */
  put(record: LeaseRecord, expectedRevision: number, ttlMs: number, timeoutMs: number): Promise<number>;
  /** Deletes the key if its revision is `expectedRevision`; the deletion carries `record` (epoch high-water). */
  delete(expectedRevision: number, record: LeaseRecord, timeoutMs: number): Promise<void>;
  /** Calls `onEntry` for the current entry and every change until the returned function is called. */
  watch(onEntry: (e: LeaseEntry) => void, onError: (err: Error) => void): () => void;
  /** Answers liveness probes with `epoch` until the returned function is called. */
  serveLiveness(epoch: () => number): () => void;
  /** Probes the holder's liveness. */
  probe(timeoutMs: number): Promise<ProbeResult>;
  /** Releases watches and subscriptions. Idempotent. */
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Parses a lease record; null when the bytes are not one (treated as a foreign holder by callers). */
export function parseRecord(bytes: Uint8Array): LeaseRecord | null {
  if (bytes.length === 0) return null;
  try {
    const r = JSON.parse(dec.decode(bytes)) as Partial<LeaseRecord>;
    if (typeof r.holder !== 'string' || typeof r.epoch !== 'number' || typeof r.ttlMs !== 'number')
      return null;
    return {
      holder: r.holder,
      instance: typeof r.instance === 'string' ? r.instance : '',
      epoch: r.epoch,
      ttlMs: r.ttlMs,
      live: r.live === true,
      priority: typeof r.priority === 'number' ? r.priority : 0,
      grantedAt: typeof r.grantedAt === 'number' ? r.grantedAt : 0,
    };
  } catch {
    return null;
  }
}

const UNKNOWN_HOLDER = '?';

function entryFromKv(e: KvEntry): LeaseEntry {
  return entryFromParts(e.revision, e.operation, e.value);
}

/**
 * A lease entry from a message of the bucket's stream, read the way the KV client does: a per-key TTL
 * marker (`Nats-Marker-Reason`) or a `KV-Operation` of DEL/PURGE is a deletion, anything else a put.
 */
function entryFromMsg(m: JsMsg): LeaseEntry {
  const op = m.headers?.has('Nats-Marker-Reason') ? 'DEL' : m.headers?.get('KV-Operation') || 'PUT';
  return entryFromParts(m.seq, op, m.data);
}

function entryFromParts(revision: number, operation: string, value: Uint8Array): LeaseEntry {
  const e = { revision, operation, value };
  if (e.operation === 'PUT') {
    const record = parseRecord(e.value) ?? {
      holder: UNKNOWN_HOLDER,
      instance: '',
      epoch: 0,
      ttlMs: 0,
      live: false,
      priority: 0,
      grantedAt: 0,
    };
    return { revision: e.revision, record };
  }
  const released = parseRecord(e.value);
  return { revision: e.revision, record: null, ...(released ? { releasedEpoch: released.epoch } : {}) };
}

function isConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** Go duration for a per-key TTL: whole seconds, rounded up (the server's granularity; longer is safe). */
export function ttlHeader(ttlMs: number): string {
  return `${Math.max(1, Math.ceil(ttlMs / 1000))}s`;
}

/** Subject of the liveness probes of one election (fast failover). A public name. */
export function livenessSubject(bucket: string, key: string): string {
  return `_GC.election.${bucket}.${key}.alive`;
}

/** Options of {@link openKvLeaseStore}. */
export interface KvLeaseStoreOptions {
  /** KV bucket name (created when missing). */
  bucket: string;
  /** Key of the lease. */
  key: string;
  /** Replicas of a new bucket (1, 3 or 5). */
  replicas: number;
  /** Time-to-live the holder uses; sets the delete-marker TTL of a new bucket. */
  ttlMs: number;
  /** Timeout of lease operations in ms (opening the bucket gets at least 5 s). */
  timeoutMs: number;
}

/**
 * Opens (and creates when missing) the election bucket: history 1, file storage, `replicas`, and on
 * servers with per-key TTL `markerTTL` so expired leases leave a delete marker that watchers see.
 */
export async function openKvLeaseStore(nc: NatsConnection, o: KvLeaseStoreOptions): Promise<LeaseStore> {
  // Opening the bucket and (re)starting watches may wait on a JetStream cluster electing leaders: give them
  // seconds. Lease reads and writes carry their own, short timeouts.
  const js = jetstream(nc, { timeout: Math.max(5000, o.timeoutMs) });
  const ttlCapable = supports(nc, 'per-key-ttl');
  let kv: KV;
  try {
    kv = await new Kvm(js).create(o.bucket, {
      history: 1,
      replicas: o.replicas,
      ...(ttlCapable ? { markerTTL: Math.max(1000, o.ttlMs) } : {}),
    });
  } catch (err) {
    throw new StoreUnavailableError('open', o.bucket, { cause: err });
  }
  let perKeyTtl = false;
  if (ttlCapable) {
    try {
      const st = await kv.status();
      perKeyTtl = st.streamInfo.config.allow_msg_ttl === true;
    } catch (err) {
      throw new StoreUnavailableError('open', o.bucket, { cause: err });
    }
  }
  const ensure = () =>
    new Kvm(js).create(o.bucket, {
      history: 1,
      replicas: o.replicas,
      ...(perKeyTtl ? { markerTTL: Math.max(1000, o.ttlMs) } : {}),
    });
  return new KvLeaseStore(nc, js, kv, o, perKeyTtl, ensure);
}

/** Stream gone: "stream not found", or "no responders" for a publish/direct get on its subjects. */
function isStreamNotFound(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound) return true;
    if (e instanceof natsErrors.NoRespondersError) return true;
    if (/stream not found|no stream matches subject|no responders/i.test(e.message)) return true;
  }
  return false;
}

/** The consumer named in a request does not exist (any more). */
function isConsumerNotFound(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.ConsumerNotFound) return true;
    if (/consumer not found/i.test(e.message)) return true;
  }
  return false;
}

class KvLeaseStore implements LeaseStore {
  readonly name: string;
  readonly perKeyTtl: boolean;
  readonly #nc: NatsConnection;
  readonly #js: ReturnType<typeof jetstream>;
  readonly #kv: KV;
  readonly #o: KvLeaseStoreOptions;
  readonly #subject: string;
  readonly #stream: string;
  readonly #stops = new Set<() => void>();
  readonly #ensure: () => Promise<unknown>;
  readonly #pending = new Set<Promise<unknown>>();
  #lastEnsure = 0;

  constructor(
    nc: NatsConnection,
    js: ReturnType<typeof jetstream>,
    kv: KV,
    o: KvLeaseStoreOptions,
    perKeyTtl: boolean,
    ensure: () => Promise<unknown>,
  ) {
    this.#ensure = ensure;
    this.#nc = nc;
    this.#js = js;
    this.#kv = kv;
    this.#o = o;
    this.perKeyTtl = perKeyTtl;
    this.name = `${o.bucket}/${o.key}`;
    this.#subject = `$KV.${o.bucket}.${o.key}`;
    this.#stream = `KV_${o.bucket}`;
  }

  /** Keeps `p` until it settles, so that close() can wait for watch shutdowns and consumer deletions. */
  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p)).catch(() => undefined);
  }

  /**
   * The bucket was deleted (by an operator or a test): create it again, at most once a second. Epochs stay
   * safe because every node keeps its highest epoch (and new epochs are floored at the wall clock).
   */
  #recreateIfGone(err: unknown): void {
    if (!isStreamNotFound(err)) return;
    const now = performance.now();
    if (now - this.#lastEnsure < 1000) return;
    this.#lastEnsure = now;
    this.#ensure().catch(() => undefined); // the next operation reports what is still wrong
  }

  async get(): Promise<LeaseEntry | null> {
    try {
      const e = await this.#kv.get(this.#o.key);
      return e ? entryFromKv(e) : null;
    } catch (err) {
      this.#recreateIfGone(err);
      throw new StoreUnavailableError('get', this.#o.bucket, { cause: err });
    }
  }

  async put(
    record: LeaseRecord,
    expectedRevision: number,
    ttlMs: number,
    timeoutMs: number,
  ): Promise<number> {
    try {
      const ack = await this.#js.publish(this.#subject, enc.encode(JSON.stringify(record)), {
        expect: { lastSubjectSequence: expectedRevision },
        timeout: timeoutMs,
        ...(this.perKeyTtl ? { ttl: ttlHeader(ttlMs) } : {}),
      });
      return ack.seq;
    } catch (err) {
      if (isConflict(err)) throw new LeaseConflictError(this.name, expectedRevision, { cause: err });
      this.#recreateIfGone(err);
      throw new StoreUnavailableError(expectedRevision ? 'update' : 'create', this.#o.bucket, { cause: err });
    }
  }

  async delete(expectedRevision: number, record: LeaseRecord, timeoutMs: number): Promise<void> {
    const h = headers();
    h.set('KV-Operation', 'DEL');
    try {
      await this.#js.publish(this.#subject, enc.encode(JSON.stringify(record)), {
        headers: h,
        expect: { lastSubjectSequence: expectedRevision },
        timeout: timeoutMs,
      });
    } catch (err) {
      if (isConflict(err)) throw new LeaseConflictError(this.name, expectedRevision, { cause: err });
      throw new StoreUnavailableError('delete', this.#o.bucket, { cause: err });
    }
  }

  watch(onEntry: (e: LeaseEntry) => void, onError: (err: Error) => void): () => void {
    let stopped = false;
    let current: { consumer: PushConsumer; messages: ConsumerMessages; prefix: string } | undefined;
    // Our own ordered push consumer rather than `kv.watch()`: every consumer of one watch carries a name
    // prefix we chose, so that whatever the client leaves behind (a create whose reply was lost in a server
    // restart, a reset whose delete failed) is found and deleted instead of lingering for the 5 minutes of
    // its inactive threshold.
    const run = async () => {
      while (!stopped) {
        const prefix = `gc_lease_${nuid.next()}`;
        try {
          const consumer = await this.#js.consumers.getPushConsumer(this.#stream, {
            name_prefix: prefix,
            filter_subjects: this.#subject,
            deliver_policy: DeliverPolicy.LastPerSubject,
          });
          if (!stopped) {
            const messages = await consumer.consume({ callback: (m) => onEntry(entryFromMsg(m)) });
            current = { consumer, messages, prefix };
            if (stopped) messages.stop();
            const err = await messages.closed();
            if (err && !stopped) onError(new StoreUnavailableError('watch', this.#o.bucket, { cause: err }));
          }
        } catch (err) {
          if (!stopped) onError(new StoreUnavailableError('watch', this.#o.bucket, { cause: err }));
        }
        current = undefined;
        this.#track(this.#sweepConsumers(prefix));
        // The watch ended (stream deleted, connection closed): start a new one after a pause. Polling keeps
        // the election correct meanwhile; the watch only makes it fast.
        if (!stopped) await new Promise((r) => setTimeout(r, 250));
      }
    };
    // A server restarted with SIGKILL can come back without the watch's ephemeral consumer, and the client
    // only notices after two missed idle heartbeats (60 s). After every reconnect, check that the consumer
    // still exists (start a new watch at once when it does not) and delete its stale predecessors.
    // nats.js returns a stoppable queued iterator; the declared type only says AsyncIterable.
    const status = this.#nc.status() as AsyncIterable<Status> & { stop?: () => void };
    const verify = async (w: NonNullable<typeof current>) => {
      for (let attempt = 0; attempt < 40 && !stopped && current === w; attempt++) {
        try {
          const info = await w.consumer.info(false);
          await this.#sweepConsumers(w.prefix, info.name);
          return;
        } catch (err) {
          if (isConsumerNotFound(err)) {
            if (current === w) w.messages.stop();
            return;
          }
          // JetStream may still be starting up after the restart: ask again shortly.
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    this.#track(
      (async () => {
        for await (const s of status) {
          if (stopped) break;
          if (s.type === 'reconnect' && current) this.#track(verify(current));
        }
      })().catch(() => undefined),
    );
    this.#track(run());
    const stop = () => {
      stopped = true;
      status.stop?.();
      current?.messages.stop();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  /**
   * Deletes the consumers named `{prefix}_*` on the bucket's stream except `keep`. Retries for a few seconds
   * while JetStream is unavailable (a restarting server) for up to 10 s; gives up quietly when the connection
   * is closed.
   */
  async #sweepConsumers(prefix: string, keep?: string): Promise<void> {
    const deadline = performance.now() + 10_000;
    for (let attempt = 0; performance.now() < deadline && !this.#nc.isClosed(); attempt++) {
      try {
        const jsm = await jetstreamManager(this.#nc, { timeout: 5000, checkAPI: false });
        const stale: string[] = [];
        for await (const ci of jsm.consumers.list(this.#stream)) {
          if (ci.name.startsWith(`${prefix}_`) && ci.name !== keep) stale.push(ci.name);
        }
        await Promise.all(
          stale.map((name) =>
            jsm.consumers.delete(this.#stream, name).catch((err: unknown) => {
              if (!isConsumerNotFound(err)) throw err;
            }),
          ),
        );
        return;
      } catch (err) {
        if (isStreamNotFound(err)) return;
        await new Promise((r) => setTimeout(r, 250 * Math.min(attempt + 1, 4)));
      }
    }
  }

  serveLiveness(epoch: () => number): () => void {
    let sub: Subscription | undefined = this.#nc.subscribe(livenessSubject(this.#o.bucket, this.#o.key), {
      callback: (_err, msg) => {
        msg.respond(enc.encode(String(epoch())));
      },
    });
    const stop = () => {
      sub?.unsubscribe();
      sub = undefined;
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  async probe(timeoutMs: number): Promise<ProbeResult> {
    try {
      const m = await this.#nc.request(livenessSubject(this.#o.bucket, this.#o.key), undefined, {
        timeout: timeoutMs,
      });
      return { kind: 'alive', epoch: Number(dec.decode(m.data)) || 0 };
    } catch (err) {
      if (
        err instanceof natsErrors.NoRespondersError ||
        (err instanceof natsErrors.RequestError && err.isNoResponders())
      ) {
        return { kind: 'absent' };
      }
      return { kind: 'unknown' };
    }
  }

  async close(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    await Promise.race([Promise.allSettled(this.#pending), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.#pending.clear();
  }
}

// ---------------------------------------------------------------------------------------------------------
// In-process implementation for fake-clock tests.

interface MemoryLink {
  cut: boolean;
  latencyMs: number;
  replyLatencyMs: number;
}

/**
 * An in-process lease key with the same compare-and-set, watch, per-key TTL and liveness semantics as the
 * NATS KV store, driven by a {@link Clock}, with per-node fault injection: `cut` (requests hang, watch
 * deliveries and liveness answers stop, like a severed link), request latency and reply latency.
 * For unit tests of timing logic on a fake clock; `src/store.contract.test.ts` proves it behaves like KV.
 */
export class MemoryLeaseBackend {
  /** The clock that drives latencies and per-key TTL expiry. */
  readonly clock: Clock;
  readonly perKeyTtl: boolean;
  #seq = 0;
  #current: LeaseEntry | null = null;
  #expiry: TimerHandle | undefined;
  readonly #watchers = new Set<{ link: MemoryLink; fn: (e: LeaseEntry) => void }>();
  readonly #responders = new Set<{ link: MemoryLink; epoch: () => number }>();
  /** Every write applied, in order (for history checks in tests). */
  readonly writes: Array<{ at: number; entry: LeaseEntry }> = [];

  constructor(clock: Clock, opts: { perKeyTtl?: boolean } = {}) {
    this.clock = clock;
    this.perKeyTtl = opts.perKeyTtl ?? false;
  }

  /** The current entry (for assertions). */
  current(): LeaseEntry | null {
    return this.#current;
  }

  /** Simulates deleting and recreating the bucket: the key and the revision counter are gone. */
  recreate(): void {
    this.#current = null;
    this.#seq = 0;
    if (this.#expiry) this.clock.clearTimeout(this.#expiry);
  }

  /** A store handle for one node. */
  connect(name = 'mem'): MemoryLeaseStore {
    return new MemoryLeaseStore(this, name);
  }

  /** @internal */
  apply(entry: Omit<LeaseEntry, 'revision'>, expected: number, ttlMs: number): number {
    const last = this.#current?.revision ?? 0;
    if (last !== expected) throw new LeaseConflictError('memory', expected);
    const e: LeaseEntry = { ...entry, revision: ++this.#seq };
    this.#set(e);
    if (this.#expiry) this.clock.clearTimeout(this.#expiry);
    this.#expiry = undefined;
    if (this.perKeyTtl && e.record) {
      this.#expiry = this.clock.setTimeout(
        () => this.#set({ revision: ++this.#seq, record: null }),
        Math.max(1, Math.ceil(ttlMs / 1000)) * 1000,
      );
    }
    return e.revision;
  }

  #set(e: LeaseEntry): void {
    this.#current = e;
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
export class MemoryLeaseStore implements LeaseStore {
  readonly name: string;
  readonly #b: MemoryLeaseBackend;
  readonly #link: MemoryLink = { cut: false, latencyMs: 0, replyLatencyMs: 0 };
  readonly #stops = new Set<() => void>();
  readonly #clock: Clock;

  constructor(backend: MemoryLeaseBackend, name: string) {
    this.#b = backend;
    this.name = name;
    this.#clock = backend.clock;
  }

  get perKeyTtl(): boolean {
    return this.#b.perKeyTtl;
  }

  /** Severs this node's link: requests hang, watch deliveries and liveness answers stop. */
  cut(): void {
    this.#link.cut = true;
  }
  /** Restores the link. */
  heal(): void {
    this.#link.cut = false;
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

  put(record: LeaseRecord, expectedRevision: number, ttlMs: number): Promise<number> {
    return this.#roundTrip(() => this.#b.apply({ record: { ...record } }, expectedRevision, ttlMs));
  }

  async delete(expectedRevision: number, record: LeaseRecord): Promise<void> {
    await this.#roundTrip(() =>
      this.#b.apply({ record: null, releasedEpoch: record.epoch }, expectedRevision, 0),
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

  close(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    return Promise.resolve();
  }
}
