import { nuid, type NatsConnection } from '@nats-io/nats-core';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
  type OrderedConsumerOptions,
} from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import {
  ClosedError,
  ClosableResource,
  ConfigError,
  ensureLimitsStream,
  InvalidNameError,
  parseJsonRecord,
  realClock,
  resourceNames,
  silentLogger,
  subjectTail,
  validateAppName,
  validateNodeId,
  type PlatformResourceNames,
} from '@gc/core';
import { AuditRecordError, AuditStoreError } from './errors.js';
import { auditRecordSchema } from './record.js';
import { PushQueue } from '@gc/core';
import {
  AuditSeverity,
  type Audit,
  type AuditFilter,
  type AuditInput,
  type AuditOptions,
  type AuditQuery,
  type AuditRecord,
  type AuditStats,
  type AuditTail,
  type AuditTailOptions,
} from './types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Defaults of {@link AuditOptions}; `platform` and `nodeId` have none and are empty here. */
export function defaultAuditOptions(): AuditOptions {
  return {
    platform: '',
    nodeId: '',
    maxAgeMs: 30 * DAY_MS,
    maxBytes: 256 * 1024 * 1024,
    replicas: 1,
    publishTimeoutMs: 5000,
    clock: realClock,
    logger: silentLogger,
  };
}

/** Merges `opts` over {@link defaultAuditOptions} and validates; throws `ConfigError` / `InvalidNameError`. */
export function resolveAuditOptions(
  opts: Partial<AuditOptions> & Pick<AuditOptions, 'platform' | 'nodeId'>,
): AuditOptions {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: AuditOptions = { ...defaultAuditOptions(), ...given };
  resourceNames(o.platform);
  validateNodeId(o.nodeId);
  const bytes = o.maxBytes;
  if (bytes !== -1 && (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1)) {
    throw new ConfigError(
      'audit.maxBytes',
      `must be a positive integer or -1, got ${JSON.stringify(o.maxBytes)}`,
    );
  }
  for (const k of ['maxAgeMs', 'publishTimeoutMs'] as const) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new ConfigError(`audit.${k}`, `must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (![1, 3, 5].includes(o.replicas)) {
    throw new ConfigError('audit.replicas', `must be 1, 3 or 5, got ${JSON.stringify(o.replicas)}`);
  }
  return o;
}

const SEVERITIES = new Set<string>(Object.values(AuditSeverity));
const enc = new TextEncoder();

/** Validates an audit type for publishing: dotted tokens, no wildcards. Throws `InvalidNameError`. */
export function validateAuditType(type: unknown): string {
  const t = subjectTail('audit type', type as string);
  if (t.split('.').some((x) => x === '*' || x === '>')) {
    throw new InvalidNameError(
      'audit type',
      t,
      'wildcards "*" and ">" are only allowed in query and tail filters',
    );
  }
  return t;
}

function toMs(v: Date | number | string, what: string): number {
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms)) throw new ConfigError(`audit.query.${what}`, `not a time: ${JSON.stringify(v)}`);
  return ms;
}

/**
 * Parses a stored audit message (see {@link auditRecordSchema}), with `seq` as its stream sequence when
 * given; null when it is not a gc audit record. Never throws.
 */
export function parseAuditRecord(data: Uint8Array, seq?: number): AuditRecord | null {
  // The parsed record is a fresh object: changed in place (cheaper than spreading it into another one).
  const record: AuditRecord | null = parseJsonRecord(auditRecordSchema, data);
  if (!record) return null;
  // A mistyped `app` or `epoch` parses to undefined: leave the key out, as a record without one has none.
  if (record.app === undefined && 'app' in record) delete record.app;
  if (record.epoch === undefined && 'epoch' in record) delete record.epoch;
  if (seq !== undefined) record.seq = seq;
  return record;
}

function matches(r: AuditRecord, f: AuditFilter): boolean {
  return (
    (f.app === undefined || r.app === f.app) &&
    (f.node === undefined || r.node === f.node) &&
    (f.severity === undefined || r.severity === f.severity)
  );
}

/**
 * Opens the platform's audit trail: ensures the stream `{platform}_audit` (subjects `{platform}._.audit.>`,
 * limits by age and size; existing limits are updated to the configured ones) and returns an {@link Audit}.
 * Throws `AuditStoreError` when the stream cannot be set up — the only place `@gc/audit` throws at runtime.
 *
 * @example
 * const audit = await createAudit(nc, { platform: 'prod', nodeId: 'node-a' });
 * void audit.record({ type: 'lock.forced', app: 'orders', data: { lock: 'job', reason: 'wedged' }, severity: 'warn' });
 * const last = await audit.query({ type: 'lock.*', since: Date.now() - 3600_000, limit: 20 });
 */
export async function createAudit(
  nc: NatsConnection,
  opts: Partial<AuditOptions> & Pick<AuditOptions, 'platform' | 'nodeId'>,
): Promise<Audit> {
  const o = resolveAuditOptions(opts);
  const names = resourceNames(o.platform);
  const stream = names.auditStream;
  const subject = `${names.platform}._.audit.>`;
  try {
    const jsm = await jetstreamManager(nc, { timeout: o.publishTimeoutMs });
    // Only limits the caller set explicitly are applied to an existing stream: a reader (the CLI) that
    // opens the audit with defaults must not reset the retention the platform configured.
    await ensureLimitsStream(jsm, stream, subject, o, {
      maxAgeMs: opts.maxAgeMs !== undefined,
      maxBytes: opts.maxBytes !== undefined,
    });
  } catch (err) {
    throw new AuditStoreError('ensure stream', stream, { cause: err });
  }
  return new AuditImpl(nc, names, o);
}

class AuditImpl extends ClosableResource implements Audit {
  readonly stream: string;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #names: PlatformResourceNames;
  readonly #o: AuditOptions;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #tails = new Set<AuditTail>();
  readonly #counter: Counter | undefined;
  #recorded = 0;
  #failed = 0;
  #closed = false;

  constructor(nc: NatsConnection, names: PlatformResourceNames, o: AuditOptions) {
    super();
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: o.publishTimeoutMs });
    this.#names = names;
    this.#o = o;
    this.stream = names.auditStream;
    const reg: Registry | undefined = o.registry;
    if (reg) {
      this.#counter =
        (reg.getSingleMetric('gc_audit_records_total') as Counter | undefined) ??
        new Counter({
          name: 'gc_audit_records_total',
          help: 'Audit records by result (stored, failed)',
          labelNames: ['stream', 'node', 'result'],
          registers: [reg],
        });
    }
  }

  #fail(input: AuditInput, err: AuditRecordError): undefined {
    this.#failed++;
    this.#counter?.inc({ stream: this.stream, node: this.#o.nodeId, result: 'failed' });
    this.#o.logger.error('audit record not stored', { type: String(input?.type), err });
    try {
      this.#o.onError?.(err, input);
    } catch (cbErr) {
      this.#o.logger.error('audit onError callback threw', { err: cbErr });
    }
    return undefined;
  }

  record(input: AuditInput): Promise<AuditRecord | undefined> {
    const p = this.#record(input);
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
    return p;
  }

  async #record(input: AuditInput): Promise<AuditRecord | undefined> {
    const typeName = String((input as Partial<AuditInput> | undefined)?.type);
    let record: AuditRecord;
    let bytes: Uint8Array;
    try {
      if (this.#closed) throw new ClosedError(`audit ${this.stream}`);
      if (typeof input !== 'object' || input === null) throw new TypeError('input must be an object');
      const type = validateAuditType(input.type);
      if (input.app !== undefined) validateAppName(input.app);
      if (input.epoch !== undefined && (!Number.isSafeInteger(input.epoch) || input.epoch < 0)) {
        throw new RangeError(`epoch must be a non-negative integer, got ${String(input.epoch)}`);
      }
      const severity = input.severity ?? 'info';
      if (!SEVERITIES.has(severity))
        throw new RangeError(`severity must be one of ${[...SEVERITIES].join(', ')}`);
      record = {
        v: 1,
        id: nuid.next(),
        time: new Date(this.#o.clock.wallNow()).toISOString(),
        node: this.#o.nodeId,
        type,
        ...(input.app !== undefined ? { app: input.app } : {}),
        ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
        severity,
        data: input.data ?? {},
      };
      const json = JSON.stringify(record);
      bytes = enc.encode(json);
      const max = this.#nc.info?.max_payload ?? Infinity;
      if (bytes.length > max)
        throw new RangeError(`record is ${bytes.length} bytes; the server's max_payload is ${max}`);
    } catch (err) {
      return this.#fail(input, new AuditRecordError(typeName, (err as Error).message, { cause: err }));
    }
    try {
      const ack = await this.#js.publish(this.#names.audit(record.type), bytes, {
        msgID: record.id,
        timeout: this.#o.publishTimeoutMs,
        retries: 2,
      });
      this.#recorded++;
      this.#counter?.inc({ stream: this.stream, node: this.#o.nodeId, result: 'stored' });
      return { ...record, seq: ack.seq };
    } catch (err) {
      return this.#fail(
        input,
        new AuditRecordError(typeName, `publish failed: ${(err as Error).message}`, { cause: err }),
      );
    }
  }

  #filterSubject(type: string | undefined): string {
    return this.#names.audit(type === undefined ? '>' : subjectTail('audit type', type));
  }

  async #consumer(type: string | undefined, start: { since?: number; newOnly?: boolean }): Promise<Consumer> {
    const opts: Partial<OrderedConsumerOptions> = { filter_subjects: [this.#filterSubject(type)] };
    if (start.since !== undefined) {
      opts.deliver_policy = DeliverPolicy.StartTime;
      opts.opt_start_time = new Date(start.since).toISOString();
    } else if (start.newOnly) {
      opts.deliver_policy = DeliverPolicy.New;
    }
    try {
      return await this.#js.consumers.get(this.stream, opts);
    } catch (err) {
      throw new AuditStoreError('read', this.stream, { cause: err });
    }
  }

  async query(q: AuditQuery = {}): Promise<AuditRecord[]> {
    if (this.#closed) throw new ClosedError(`audit ${this.stream}`);
    const limit = q.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new ConfigError('audit.query.limit', `must be a positive integer, got ${JSON.stringify(limit)}`);
    }
    const since = q.since === undefined ? undefined : toMs(q.since, 'since');
    const until = q.until === undefined ? undefined : toMs(q.until, 'until');
    if (q.app !== undefined) validateAppName(q.app);
    if (q.node !== undefined) validateNodeId(q.node);
    const consumer = await this.#consumer(q.type, since === undefined ? {} : { since });
    const out: AuditRecord[] = [];
    try {
      const info = await consumer.info();
      if (info.num_pending === 0) return out;
      const msgs = await consumer.consume({ max_messages: 512 });
      try {
        for await (const m of msgs) {
          const stop = m.info.pending === 0;
          if (until !== undefined && m.info.timestampNanos / 1e6 > until) break;
          const r = parseAuditRecord(m.data, m.seq);
          if (r && matches(r, q)) {
            out.push(r);
            if (out.length > limit) out.shift();
          }
          if (stop) break;
        }
      } finally {
        await msgs.close();
      }
    } catch (err) {
      throw new AuditStoreError('query', this.stream, { cause: err });
    } finally {
      // The query's consumer: gone already or the server is away; it expires by itself.
      await consumer.delete().catch(() => undefined);
    }
    return out;
  }

  async tail(opts: AuditTailOptions = {}): Promise<AuditTail> {
    if (this.#closed) throw new ClosedError(`audit ${this.stream}`);
    if (opts.app !== undefined) validateAppName(opts.app);
    if (opts.node !== undefined) validateNodeId(opts.node);
    this.#filterSubject(opts.type);
    const since = opts.since === undefined ? undefined : toMs(opts.since, 'since');
    // The consumer exists on the server before the tail is handed out: a record stored after `await tail()`
    // is delivered, also with the default start (new records only).
    const consumer = await this.#consumer(opts.type, since === undefined ? { newOnly: true } : { since });
    let msgs: ConsumerMessages;
    try {
      msgs = await consumer.consume({ max_messages: 256 });
    } catch (err) {
      await consumer.delete().catch(() => undefined); // the server is away: it expires by itself
      throw new AuditStoreError('tail', this.stream, { cause: err });
    }
    let stopped = false;
    const q = new PushQueue<AuditRecord>(() => {
      stopped = true;
      this.#tails.delete(tail);
      // The consumer is removed, not left to expire (ordered consumers linger for 5 minutes).
      const removing = msgs.close().then(() => consumer.delete());
      void removing.catch(() => undefined); // the server is away: the consumer expires by itself
    });
    const tail: AuditTail = { stop: () => q.stop(), [Symbol.asyncIterator]: () => q[Symbol.asyncIterator]() };
    // Closed while the consumer was being made: an ended tail, as for a watch of a closed resource.
    if (this.#closed) {
      q.stop();
      return tail;
    }
    this.#tails.add(tail);
    void (async () => {
      try {
        for await (const m of msgs as AsyncIterable<JsMsg>) {
          const r = parseAuditRecord(m.data, m.seq);
          if (r && matches(r, opts)) q.push(r);
        }
      } catch (err) {
        if (!stopped) this.#o.logger.error('audit tail failed', { err });
      } finally {
        q.stop();
      }
    })();
    return tail;
  }

  stats(): AuditStats {
    return { recorded: this.#recorded, failed: this.#failed, pending: this.#pending.size };
  }

  async flush(): Promise<void> {
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
  }

  protected async closeResources(): Promise<void> {
    this.#closed = true;
    await this.flush();
    for (const t of [...this.#tails]) t.stop();
  }
}
