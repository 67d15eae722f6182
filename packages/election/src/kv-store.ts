// The lease store on NATS KV: the election bucket, compare-and-set writes on the lease key, a watch over a
// push consumer of its own, liveness probes (fast failover), and the lease record encoding.
import { ClosableResource, isNoResponders, isStreamNotFound as isStreamNotFoundError } from '@gc/core';
import {
  createInbox,
  headers,
  nuid,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { errors as natsErrors } from '@nats-io/nats-core';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { LeaseConflictError, StoreUnavailableError } from './errors.js';
import { parseRecord } from './record.js';
import type { LeaseEntry, LeaseStore, ProbeResult } from './store.js';
import type { LeaseRecord } from './types.js';

/** The lease record's parser (in record.ts, next to its schema), re-exported for `internal.ts`. */
export { parseRecord };

const enc = new TextEncoder();
const dec = new TextDecoder();

const UNKNOWN_HOLDER = '?';

function entryFromKv(e: KvEntry): LeaseEntry {
  return entryFromParts(e.revision, e.operation, e.value);
}

/**
 * The KV operation of a message of the bucket's stream, read the way the KV client does: a per-key TTL
 * marker (`Nats-Marker-Reason`) or a `KV-Operation` of DEL/PURGE is a deletion, anything else a put.
 */
function operationOf(h: MsgHdrs | undefined): string {
  return h?.has('Nats-Marker-Reason') ? 'DEL' : h?.get('KV-Operation') || 'PUT';
}

/** Stream and delivery sequence from a JetStream ack subject (both the 9- and the 12+-token forms). */
function ackSequences(reply: string): { stream: number; delivery: number } | undefined {
  const t = reply.split('.');
  if (t[0] !== '$JS' || t[1] !== 'ACK') return undefined;
  if (t.length === 9) t.splice(2, 0, '_', '');
  if (t.length < 11) return undefined;
  const stream = Number(t[7]);
  const delivery = Number(t[8]);
  return Number.isSafeInteger(stream) && Number.isSafeInteger(delivery) ? { stream, delivery } : undefined;
}

/** Idle heartbeat of lease watch consumers; 2.5 intervals without any message end the watch. */
const WATCH_HEARTBEAT_MS = 1000;
/** The server deletes a lease watch consumer nobody listens to after this long. */
const WATCH_INACTIVE_MS = 5000;

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
  /** Timeout of lease operations in ms (opening the bucket gets at least 5 s). */
  timeoutMs: number;
}

/**
 * Opens (and creates when missing) the election bucket: history 1, file storage, `replicas`. The bucket
 * has no per-key TTL and no delete markers, on every server version: a lease expires only by the
 * revision-and-timer rule of the election, never on the server (see the README for why).
 */
export async function openKvLeaseStore(nc: NatsConnection, o: KvLeaseStoreOptions): Promise<LeaseStore> {
  // Opening the bucket and (re)starting watches may wait on a JetStream cluster electing leaders: give them
  // seconds. Lease reads and writes carry their own, short timeouts.
  const js = jetstream(nc, { timeout: Math.max(5000, o.timeoutMs) });
  const ensure = () => new Kvm(js).create(o.bucket, { history: 1, replicas: o.replicas });
  let kv: KV;
  try {
    kv = await ensure();
  } catch (err) {
    throw new StoreUnavailableError('open', o.bucket, { cause: err });
  }
  return new KvLeaseStore(nc, js, kv, o, ensure);
}

/** Stream gone: "stream not found", or "no responders" for a publish/direct get on its subjects. */
function isStreamNotFound(err: unknown): boolean {
  return isStreamNotFoundError(err) || isNoResponders(err);
}

class KvLeaseStore extends ClosableResource implements LeaseStore {
  readonly name: string;
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
    ensure: () => Promise<unknown>,
  ) {
    super();
    this.#ensure = ensure;
    this.#nc = nc;
    this.#js = js;
    this.#kv = kv;
    this.#o = o;
    this.name = `${o.bucket}/${o.key}`;
    this.#subject = `$KV.${o.bucket}.${o.key}`;
    this.#stream = `KV_${o.bucket}`;
  }

  /** Keeps `p` until it settles, so that close() can wait for watch shutdowns and consumer deletions. */
  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    // Only tracking: whoever awaits `p` gets its error.
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

  async put(record: LeaseRecord, expectedRevision: number, timeoutMs: number): Promise<number> {
    try {
      // No `Nats-TTL`: a per-key TTL expiry racing a takeover can leave a marker that removes the takeover.
      const ack = await this.#js.publish(this.#subject, enc.encode(JSON.stringify(record)), {
        expect: { lastSubjectSequence: expectedRevision },
        timeout: timeoutMs,
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
    let endCurrent: ((err?: Error) => void) | undefined;
    // A restarted watch starts with the key's current entry, which the previous one may have delivered
    // already: that one is not delivered twice. (A lower revision is delivered: the stream was recreated.)
    let lastRevision = 0;
    const deliver = (e: LeaseEntry) => {
      if (e.revision === lastRevision) return;
      lastRevision = e.revision;
      onEntry(e);
    };
    const run = async () => {
      while (!stopped) {
        const err = await this.#watchOnce(deliver, (end) => {
          endCurrent = end;
          if (stopped) end();
        });
        endCurrent = undefined;
        if (err && !stopped) onError(new StoreUnavailableError('watch', this.#o.bucket, { cause: err }));
        // The watch ended (server restarted, stream deleted, connection closed): start a new one after a
        // pause. Polling keeps the election correct meanwhile; the watch only makes it fast.
        if (!stopped) await new Promise((r) => setTimeout(r, 250));
      }
    };
    this.#track(run());
    const stop = () => {
      stopped = true;
      endCurrent?.();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  /**
   * One watch of the lease key through a push consumer of our own rather than `kv.watch()`: in-memory,
   * with a short inactive threshold and frequent idle heartbeats. A server restart drops it, the missing
   * heartbeats end the watch within seconds and the caller starts a new one; whatever a lost delete
   * leaves behind is removed by the server within the inactive threshold. (The KV client's ordered
   * consumers persist across SIGKILL restarts inconsistently, notice a lost consumer only after 60 s and
   * linger for 5 minutes.) Resolves when the watch ends: undefined when asked to, else the reason.
   */
  async #watchOnce(
    onEntry: (e: LeaseEntry) => void,
    started: (end: (err?: Error) => void) => void,
  ): Promise<Error | undefined> {
    const name = `gc_lease_${nuid.next()}`;
    const inbox = createInbox();
    let end!: (err?: Error) => void;
    const ended = new Promise<Error | undefined>((resolve) => {
      end = resolve;
    });
    let lastActivity = performance.now();
    let expectDelivery = 1;
    const sub = this.#nc.subscribe(inbox, {
      callback: (_err, msg) => {
        lastActivity = performance.now();
        const code = msg.headers?.code ?? 0;
        if (code === 100) {
          // Idle heartbeat or flow-control request.
          if (msg.reply) msg.respond();
          const stalled = msg.headers?.get('Nats-Consumer-Stalled');
          if (stalled) this.#nc.publish(stalled);
          return;
        }
        if (code >= 400) {
          end(new Error(`watch consumer ${name}: ${code} ${msg.headers?.description ?? ''}`.trim()));
          return;
        }
        const seqs = ackSequences(msg.reply ?? '');
        if (!seqs) return;
        if (seqs.delivery !== expectDelivery) {
          end(new Error(`watch consumer ${name}: delivery ${seqs.delivery}, expected ${expectDelivery}`));
          return;
        }
        expectDelivery++;
        onEntry(entryFromParts(seqs.stream, operationOf(msg.headers), msg.data));
      },
    });
    const silent = () => performance.now() - lastActivity > WATCH_HEARTBEAT_MS * 2.5;
    const monitor = setInterval(() => {
      // Timers run before pending socket reads: after the event loop was blocked, heartbeats may be
      // waiting unread. Look again once I/O has been polled (setImmediate runs after the poll phase).
      if (silent()) {
        setImmediate(() => {
          if (silent()) end(new Error(`watch consumer ${name}: heartbeats missed`));
        });
      }
    }, WATCH_HEARTBEAT_MS);
    monitor.unref();
    started(end);
    let created = false;
    try {
      const jsm = await jetstreamManager(this.#nc, { timeout: 5000, checkAPI: false });
      const creating = jsm.consumers.add(this.#stream, {
        name,
        deliver_subject: inbox,
        filter_subject: this.#subject,
        deliver_policy: DeliverPolicy.LastPerSubject,
        ack_policy: AckPolicy.None,
        flow_control: true,
        idle_heartbeat: WATCH_HEARTBEAT_MS * 1_000_000,
        inactive_threshold: WATCH_INACTIVE_MS * 1_000_000,
        mem_storage: true,
        num_replicas: 1,
      });
      const first = await Promise.race([creating.then(() => 'created' as const), ended]);
      if (first !== 'created') {
        // Ended while creating: delete the consumer should the create still succeed.
        this.#track(creating.then(() => jsm.consumers.delete(this.#stream, name)).catch(() => undefined));
        return first;
      }
      created = true;
      lastActivity = performance.now();
      const err = await ended;
      return err;
    } catch (err) {
      return err as Error;
    } finally {
      clearInterval(monitor);
      sub.unsubscribe();
      if (created && !this.#nc.isClosed()) {
        this.#track(
          jetstreamManager(this.#nc, { timeout: 2000, checkAPI: false })
            .then((jsm) => jsm.consumers.delete(this.#stream, name))
            // The probe's consumer: gone already or the server is away; it expires by itself.
            .catch(() => undefined),
        );
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

  onReconnect(listener: () => void): () => void {
    const it = this.#nc.status()[Symbol.asyncIterator]();
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      void it.return?.();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    this.#track(
      (async () => {
        for (;;) {
          const r = await it.next();
          if (r.done || stopped) return;
          if (r.value.type === 'reconnect') listener();
        }
      })(),
    );
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

  protected async closeResources(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    await Promise.race([Promise.allSettled(this.#pending), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.#pending.clear();
  }
}
