import { headers, nuid, type NatsConnection, type QueuedIterator } from '@nats-io/nats-core';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
import { ClosedError, ConfigError, ClosableResource, validateNodeId, type TimerHandle } from '@gc/core';
import { MembershipStoreError } from './errors.js';
import { membershipMetrics, type MembershipMetrics } from './metrics.js';
import { resolveMembershipOptions, validateApps, validateLabels } from './options.js';
import {
  enc,
  isConflict,
  leaveReasonOf,
  parseMemberRecord,
  sameShape,
  ttlHeader,
  type ViewEntry,
} from './records.js';
import { openMembershipBucket, watchBucket } from './store.js';
import { PushQueue } from '@gc/core';
import type {
  Labels,
  LeaveReason,
  Member,
  MemberRecord,
  Membership,
  MembershipEvent,
  MembershipOptions,
  MembershipWatcher,
} from './types.js';

/**
 * Joins the platform's membership (`{platform}_membership`, created when missing) and watches it.
 *
 * Liveness: each node rewrites its record every `heartbeatMs`. An observer reports a member as left
 * (`expired`) when the record's revision has not changed for `failAfterMs` (default 3 × heartbeat) on the
 * observer's monotonic clock — after checking with a read that it really did not change — and then deletes
 * the stale record (compare-and-set on that revision). On nats-server ≥ 2.11 every heartbeat also carries a
 * per-key TTL of `serverTtlMs` (a backstop, default max(2 × failAfterMs, 5 s), rounded up to seconds) so the
 * server removes a crashed node's record even when no observer runs. `close()` deletes the record at once.
 *
 * @example
 * const m = await createMembership(nc, { platform: 'prod', nodeId: 'node-a', labels: { zone: 'eu-1' }, apps: ['orders'] });
 * for await (const e of await m.watch()) console.log(e.type, e.member.nodeId, e.type === 'leave' ? e.reason : '');
 */
export async function createMembership(
  nc: NatsConnection,
  opts: Partial<MembershipOptions> & Pick<MembershipOptions, 'platform' | 'nodeId'>,
): Promise<Membership> {
  const o = resolveMembershipOptions(opts);
  const { bucket, js, kv, perKeyTtl } = await openMembershipBucket(nc, o);
  const m = new MembershipImpl(nc, js, kv, bucket, o, perKeyTtl);
  try {
    await m.start();
  } catch (err) {
    await m.close();
    throw err;
  }
  return m;
}

class MembershipImpl extends ClosableResource implements Membership {
  readonly bucket: string;
  readonly nodeId: string;
  readonly perKeyTtl: boolean;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #kv: KV;
  readonly #o: MembershipOptions;
  readonly #metrics: MembershipMetrics;
  readonly #view = new Map<string, ViewEntry>();
  /** Highest revision per key that was deleted or expired: older PUTs replayed later are ignored. */
  readonly #gone = new Map<string, number>();
  readonly #watchers = new Set<PushQueue<MembershipEvent>>();
  readonly #record: MemberRecord;
  #revision = 0;
  #hbTimer: TimerHandle | undefined;
  #watchStop: (() => void) | undefined;
  #statusStop: (() => void) | undefined;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    nc: NatsConnection,
    js: JetStreamClient,
    kv: KV,
    bucket: string,
    o: MembershipOptions,
    perKeyTtl: boolean,
  ) {
    super();
    this.#nc = nc;
    this.#js = js;
    this.#kv = kv;
    this.#o = o;
    this.bucket = bucket;
    this.nodeId = o.nodeId;
    this.perKeyTtl = perKeyTtl;
    this.#metrics = membershipMetrics(o.registry, { bucket, node: o.nodeId });
    const now = o.clock.wallNow();
    this.#record = {
      v: 1,
      nodeId: o.nodeId,
      instance: nuid.next(),
      labels: o.labels,
      apps: o.apps,
      version: o.version,
      startedAt: now,
      heartbeatAt: now,
      heartbeatMs: o.heartbeatMs,
      failAfterMs: o.failAfterMs,
    };
  }

  async start(): Promise<void> {
    if (!this.#o.observeOnly) await this.#serialWrite();
    // Initial view: every record present now (first seen now: a crashed node's stale record counts as live
    // for at most failAfterMs more, then it is verified, reported and removed).
    try {
      const keys: string[] = [];
      for await (const k of await this.#kv.keys()) keys.push(k);
      for (const k of keys) {
        const e = await this.#kv.get(k);
        if (e) this.#observe(e);
      }
    } catch (err) {
      throw new MembershipStoreError('list', this.bucket, { cause: err });
    }
    // The watch is set up before start() returns, so no change after it is missed (it replays last values).
    let first: QueuedIterator<KvWatchEntry>;
    try {
      first = await this.#kv.watch();
    } catch (err) {
      throw new MembershipStoreError('watch', this.bucket, { cause: err });
    }
    this.#watchStop = watchBucket(this.#kv, this.bucket, first, (e) => this.#observe(e), this.#o);
    this.#watchConnection();
    if (!this.#o.observeOnly) this.#scheduleHeartbeat();
  }

  /**
   * After this observer reconnects (its link dropped, or the server restarted) every member gets a fresh
   * full window: members that were cut off too need time to reconnect and heartbeat before anyone judges.
   */
  #watchConnection(): void {
    const it = this.#nc.status()[Symbol.asyncIterator]();
    this.#statusStop = () => void it.return?.();
    void (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done || this.#closed) return;
        if (r.value.type === 'reconnect') this.#restartWindows();
      }
    })().catch((err: unknown) => this.#o.logger.debug('membership status watch ended', { err }));
  }

  #restartWindows(): void {
    const now = this.#o.clock.now();
    for (const [key, entry] of this.#view) {
      if (entry.timer) this.#o.clock.clearTimeout(entry.timer);
      entry.at = now;
      // Members reconnect on their own schedule (up to a reconnect interval after this observer).
      entry.notBefore = now + this.#o.reconnectGraceMs + entry.record.failAfterMs;
      this.#arm(key, entry);
    }
  }

  #emit(event: MembershipEvent): void {
    this.#metrics.event(event.type);
    this.#metrics.members(this.#view.size);
    for (const w of this.#watchers) w.push(event);
  }

  #toMember(v: ViewEntry): Member {
    return {
      ...v.record,
      labels: { ...v.record.labels },
      apps: [...v.record.apps],
      revision: v.revision,
      self: v.record.nodeId === this.nodeId && v.record.instance === this.#record.instance,
      sinceHeartbeatMs: Math.max(0, this.#o.clock.now() - v.at),
    };
  }

  #observe(e: KvEntry): void {
    if (this.#closed) return;
    const key = e.key;
    const prev = this.#view.get(key);
    if (prev && prev.revision >= e.revision) return;
    if ((this.#gone.get(key) ?? 0) >= e.revision) return;
    if (e.operation !== 'PUT') {
      this.#gone.set(key, e.revision);
      if (prev) this.#leave(key, prev, leaveReasonOf(e));
      return;
    }
    const record = parseMemberRecord(e.value);
    if (!record || record.nodeId !== key) {
      this.#o.logger.debug('ignoring a membership record gc cannot read', { key, revision: e.revision });
      return;
    }
    if (prev?.timer) this.#o.clock.clearTimeout(prev.timer);
    const entry: ViewEntry = { record, revision: e.revision, at: this.#o.clock.now() };
    this.#view.set(key, entry);
    this.#arm(key, entry);
    if (!prev) this.#emit({ type: 'join', member: this.#toMember(entry) });
    else if (!sameShape(prev.record, record)) {
      this.#emit({ type: 'update', member: this.#toMember(entry), previous: this.#toMember(prev) });
    }
  }

  #leave(key: string, entry: ViewEntry, reason: LeaveReason): void {
    if (entry.timer) this.#o.clock.clearTimeout(entry.timer);
    if (this.#view.get(key) !== entry) return;
    this.#view.delete(key);
    this.#emit({ type: 'leave', member: this.#toMember(entry), reason });
  }

  #arm(key: string, entry: ViewEntry): void {
    const due = Math.max(entry.at + entry.record.failAfterMs, entry.notBefore ?? 0);
    entry.timer = this.#o.clock.setTimeout(
      () => {
        entry.timer = undefined;
        if (this.#view.get(key) !== entry || this.#closed) return;
        if (this.#o.clock.now() < due) return this.#arm(key, entry); // a timer that fired early
        void this.#verifyExpired(key, entry);
      },
      Math.max(0, due - this.#o.clock.now()),
    );
  }

  /** The revision looked stale: confirm with a read before reporting (a cut-off observer must not evict). */
  async #verifyExpired(key: string, entry: ViewEntry): Promise<void> {
    let e: KvEntry | null;
    try {
      e = await this.#kv.get(key);
    } catch (err) {
      // Cannot tell (this observer lost its connection, or the server is restarting): keep the member and
      // count a fresh window from now, so members get a full failAfterMs to heartbeat once things are back.
      this.#o.logger.debug('membership expiry check failed; counting again', { key, err });
      if (this.#view.get(key) === entry && !this.#closed) {
        entry.blind = true;
        entry.at = this.#o.clock.now();
        this.#arm(key, entry);
      }
      return;
    }
    if (this.#view.get(key) !== entry || this.#closed) return;
    if (e && e.revision > entry.revision) return this.#observe(e);
    if (entry.blind) {
      // The first look after this observer could not see: give the member a full window from now.
      entry.blind = false;
      entry.at = this.#o.clock.now();
      return this.#arm(key, entry);
    }
    this.#gone.set(key, entry.revision);
    this.#leave(key, entry, 'expired');
    if (entry.record.instance === this.#record.instance) return; // our own heartbeat will rewrite it
    try {
      await this.#deleteKey(key, entry.revision, { reason: 'expired', by: this.nodeId });
    } catch (err) {
      if (!isConflict(err)) this.#o.logger.debug('could not remove an expired member record', { key, err });
    }
  }

  async #deleteKey(key: string, expected: number, body: Record<string, unknown>): Promise<void> {
    const h = headers();
    h.set('KV-Operation', 'DEL');
    await this.#js.publish(`$KV.${this.bucket}.${key}`, enc.encode(JSON.stringify(body)), {
      headers: h,
      expect: { lastSubjectSequence: expected },
      timeout: this.#o.opTimeoutMs,
    });
  }

  /** Writes this node's record (CAS on our revision; takes over a predecessor's or a deleted record). */
  async #writeSelf(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const record: MemberRecord = { ...this.#record, heartbeatAt: this.#o.clock.wallNow() };
      try {
        const ack = await this.#js.publish(
          `$KV.${this.bucket}.${this.nodeId}`,
          enc.encode(JSON.stringify(record)),
          {
            expect: { lastSubjectSequence: this.#revision },
            timeout: this.#o.opTimeoutMs,
            ...(this.perKeyTtl ? { ttl: ttlHeader(this.#o.serverTtlMs) } : {}),
          },
        );
        this.#revision = ack.seq;
        return;
      } catch (err) {
        if (!isConflict(err)) throw new MembershipStoreError('heartbeat', this.bucket, { cause: err });
        // Someone changed our key: a predecessor's record, an observer's expiry delete, a TTL marker, or
        // another process using the same node id.
        const cur = await this.#kv.get(this.nodeId).catch(() => null);
        const other = cur && cur.operation === 'PUT' ? parseMemberRecord(cur.value) : null;
        if (other && other.instance !== this.#record.instance && this.#revision !== 0) {
          this.#o.logger.error('another process wrote this node id; node ids must be unique', {
            nodeId: this.nodeId,
            other: other.instance,
          });
        }
        this.#revision = cur?.revision ?? 0;
      }
    }
    throw new MembershipStoreError('heartbeat (key kept changing)', this.bucket);
  }

  #serialWrite(): Promise<void> {
    const run = this.#writes.then(() => this.#writeSelf());
    // The chain only orders the writes; each caller gets its own write's result or error.
    this.#writes = run.catch(() => undefined);
    return run;
  }

  #scheduleHeartbeat(): void {
    this.#hbTimer = this.#o.clock.setTimeout(() => {
      this.#hbTimer = undefined;
      if (this.#closed) return;
      this.#serialWrite()
        .catch((err: unknown) => {
          this.#metrics.heartbeatFailed();
          this.#o.logger.warn('membership heartbeat failed', { err });
        })
        .finally(() => {
          if (!this.#closed) this.#scheduleHeartbeat();
        });
    }, this.#o.heartbeatMs);
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new ClosedError(`membership ${this.bucket} (${what})`);
  }

  members(): Promise<Member[]> {
    // A throw inside the executor (closed) becomes a rejection.
    return new Promise((resolve) => {
      this.#checkOpen('members');
      resolve(
        [...this.#view.values()]
          .map((v) => this.#toMember(v))
          .sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
      );
    });
  }

  async member(nodeId: string): Promise<Member | undefined> {
    validateNodeId(nodeId);
    return (await this.members()).find((m) => m.nodeId === nodeId);
  }

  // Live as soon as it is registered: events come from the bucket watch that runs since start(). Async for
  // the one watch idiom of gc (as nats.js kv.watch()).
  // eslint-disable-next-line @typescript-eslint/require-await -- async for the one watch idiom; live at once
  async watch(opts: { initial?: boolean } = {}): Promise<MembershipWatcher> {
    const q = new PushQueue<MembershipEvent>(() => this.#watchers.delete(q));
    if (this.#closed) {
      q.stop();
      return { stop: () => q.stop(), [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() };
    }
    if (opts.initial ?? true) {
      const current = [...this.#view.values()].sort((a, b) => a.record.nodeId.localeCompare(b.record.nodeId));
      for (const v of current) q.push({ type: 'join', member: this.#toMember(v) });
    }
    this.#watchers.add(q);
    return {
      stop: () => q.stop(),
      [Symbol.asyncIterator]: () => q[Symbol.asyncIterator](),
    };
  }

  async updateLabels(labels: Labels): Promise<void> {
    this.#checkOpen('updateLabels');
    if (this.#o.observeOnly)
      throw new ConfigError('membership.observeOnly', 'an observer has no record to update');
    this.#record.labels = validateLabels(labels);
    await this.#serialWrite();
  }

  async updateApps(apps: string[]): Promise<void> {
    this.#checkOpen('updateApps');
    if (this.#o.observeOnly)
      throw new ConfigError('membership.observeOnly', 'an observer has no record to update');
    this.#record.apps = validateApps(apps);
    await this.#serialWrite();
  }

  protected async closeResources(): Promise<void> {
    this.#closed = true;
    if (this.#hbTimer) this.#o.clock.clearTimeout(this.#hbTimer);
    await this.#writes;
    if (!this.#o.observeOnly && this.#revision > 0) {
      try {
        await this.#deleteKey(this.nodeId, this.#revision, { reason: 'left', by: this.nodeId });
      } catch (err) {
        // A conflict means the record is no longer ours (another process with this id, or already removed).
        if (!isConflict(err))
          this.#o.logger.warn('membership: could not delete own record at close', { err });
      }
    }
    this.#watchStop?.();
    this.#statusStop?.();
    for (const v of this.#view.values()) if (v.timer) this.#o.clock.clearTimeout(v.timer);
    for (const w of [...this.#watchers]) w.stop();
  }
}
