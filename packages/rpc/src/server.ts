import { createLogger, parseEpoch, realClock, validateNodeId, type Clock, type Logger } from '@gc/core';
import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { decodeError, decodeJson, decodeKeyHeader, encodeError, encodeJson, RpcHeader } from './codec.js';
import {
  BadPayloadError,
  HandlerError,
  NotLeaderError,
  NoInstanceError,
  NotOwnerError,
  PayloadTooLargeError,
  RpcTimeoutError,
  UnknownMethodError,
} from './errors.js';
import {
  defaultIdempotencyOptions,
  IdempotencyStore,
  idempotencyBucket,
  payloadHash,
  type StoredReply,
} from './idempotency.js';
import { rpcMetrics } from './metrics.js';
import { metricsMiddleware, runChain } from './middleware.js';
import { methodOf, rpcSubjects, validateMethod, type RpcSubjects } from './subjects.js';
import { extractTrace, tracer } from './tracing.js';
import type {
  HandleOptions,
  Handler,
  Middleware,
  PayloadSchema,
  RpcServer,
  RpcServerInit,
  RpcServerOptions,
  ServerContext,
} from './types.js';

/** Defaults for {@link RpcServerOptions} (the required `platform`, `app`, `nodeId` are empty). */
export function defaultRpcServerOptions(): RpcServerOptions {
  return {
    platform: '',
    app: '',
    nodeId: '',
    pollIntervalMs: 100,
    handlerTimeoutMs: 5000,
    middleware: [],
    idempotency: defaultIdempotencyOptions(),
  };
}

interface Entry {
  fn: Handler<unknown, unknown>;
  schema: PayloadSchema | undefined;
  timeoutMs: number;
  idempotent: boolean;
}

type Via = 'any' | 'leader' | 'node';

/** A request being handled: its deadline (clock ms), how to fail it, and its abort controller (made on first use). */
interface Running {
  deadlineMs: number;
  timeoutMs: number;
  method: string;
  reject?: (err: Error) => void;
  ac?: AbortController;
}

/** Handler deadlines are checked by one sweep timer instead of one timer per request (cheaper on the hot path). */
const SWEEP_MS = 10;

/** Validates `value` with a Standard Schema and returns the (possibly transformed) value. */
async function validate(
  app: string,
  method: string,
  schema: PayloadSchema,
  value: unknown,
): Promise<unknown> {
  const r = await schema['~standard'].validate(value);
  if (!r.issues) return r.value;
  const issues = r.issues.map((i) => ({
    path: formatPath(i.path),
    message: i.message,
  }));
  const detail = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  throw new BadPayloadError(app, method, detail, issues);
}

function formatPath(path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string {
  if (!path || path.length === 0) return '';
  let out = '';
  for (const seg of path) {
    const k = typeof seg === 'object' && seg !== null ? seg.key : seg;
    if (typeof k === 'number') out += `[${k}]`;
    else out += out ? `.${String(k)}` : String(k);
  }
  return out;
}

/** The per-request context; a class so the lazy `signal` and `locals` stay cheap on the hot path. */
class ServerCtx implements ServerContext {
  readonly side = 'server' as const;
  #locals: Map<string, unknown> | undefined;

  constructor(
    readonly app: string,
    readonly method: string,
    readonly headers: Map<string, string>,
    readonly idempotencyKey: string | undefined,
    readonly nodeId: string,
    readonly via: Via,
    readonly payload: unknown,
    readonly epoch: number | undefined,
    private readonly running: Running,
    readonly span: Span,
    readonly log: Logger,
  ) {}

  get locals(): Map<string, unknown> {
    return (this.#locals ??= new Map());
  }

  get signal(): AbortSignal {
    this.running.ac ??= new AbortController();
    return this.running.ac.signal;
  }
}

class Server implements RpcServer {
  readonly platform: string;
  readonly app: string;
  readonly nodeId: string;
  readonly #nc: NatsConnection;
  readonly #o: RpcServerOptions;
  readonly #subjects: RpcSubjects;
  readonly #handlers = new Map<string, Entry>();
  readonly #chain: Middleware<ServerContext>[];
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #idem: IdempotencyStore;
  readonly #running = new Set<Running>();
  #sweepTimer: object | undefined;
  #anySub: Subscription | undefined;
  #leaderSub: Subscription | undefined;
  #nodeSub: Subscription | undefined;
  #presenceSub: Subscription | undefined;
  #leaderEpoch: number | undefined;
  #healthy = true;
  #timer: object | undefined;
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  #refreshing: Promise<void> = Promise.resolve();

  constructor(nc: NatsConnection, o: RpcServerOptions) {
    this.#nc = nc;
    this.#o = o;
    this.#subjects = rpcSubjects(o.platform, o.app);
    this.platform = this.#subjects.platform;
    this.app = this.#subjects.app;
    this.nodeId = validateNodeId(o.nodeId);
    this.#clock = o.clock ?? realClock;
    this.#log = (o.logger ?? createLogger({ name: 'gc-rpc' })).child({ app: this.app, node: this.nodeId });
    this.#chain = o.registry
      ? [metricsMiddleware(rpcMetrics(o.registry)), ...o.middleware]
      : [...o.middleware];
    this.#idem = new IdempotencyStore(
      nc,
      idempotencyBucket(this.platform, this.app),
      this.nodeId,
      o.idempotency,
      this.#log,
      this.#clock,
    );
    this.#nodeSub = nc.subscribe(this.#subjects.subscriptions.node(this.nodeId), {
      callback: (err, msg) => this.#onMessage(err, msg, 'node'),
    });
    this.#syncSubscriptions();
    this.#schedulePoll();
  }

  get servingLeader(): boolean {
    return this.#leaderSub !== undefined;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  handle<In = unknown, Out = unknown>(
    method: string,
    fn: Handler<In, Out>,
    opts: HandleOptions<In> = {},
  ): void {
    validateMethod(method);
    if (typeof fn !== 'function') throw new TypeError(`handler of ${this.app}.${method} must be a function`);
    const timeoutMs = opts.timeoutMs ?? this.#o.handlerTimeoutMs;
    if (!(timeoutMs > 0))
      throw new RangeError(`timeoutMs of ${this.app}.${method} must be > 0, got ${timeoutMs}`);
    this.#handlers.set(method, {
      fn: fn as Handler<unknown, unknown>,
      schema: opts.schema,
      timeoutMs,
      idempotent: opts.idempotent ?? false,
    });
  }

  unhandle(method: string): void {
    this.#handlers.delete(method);
  }

  methods(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  refresh(): Promise<void> {
    if (this.#closing) return Promise.resolve();
    this.#refreshing = this.#refreshing.then(async () => {
      this.#syncSubscriptions();
      if (!this.#nc.isClosed()) await this.#nc.flush();
    });
    return this.#refreshing;
  }

  /** Brings subscriptions in line with `healthy()`/`isLeader()`; true when something changed. */
  #syncSubscriptions(): boolean {
    if (this.#closing || this.#nc.isClosed()) return false;
    let changed = false;
    let healthy = true;
    let leaderEpoch: number | undefined;
    try {
      healthy = this.#o.healthy ? this.#o.healthy() : true;
      leaderEpoch = this.#o.isLeader?.() ? this.#o.epoch?.() : undefined;
    } catch (err) {
      this.#log.error('isLeader/epoch/healthy hook threw; serving as unhealthy non-leader', {
        error: (err as Error).message,
      });
      healthy = false;
      leaderEpoch = undefined;
    }
    this.#healthy = healthy;
    if (healthy && !this.#anySub) {
      this.#anySub = this.#nc.subscribe(this.#subjects.subscriptions.any, {
        queue: this.#subjects.queue,
        callback: (err, msg) => this.#onMessage(err, msg, 'any'),
      });
      this.#presenceSub = this.#nc.subscribe(this.#subjects.presence, {
        callback: (_err, msg) => {
          if (this.#healthy) msg.respond(this.nodeId);
        },
      });
      changed = true;
    } else if (!healthy && this.#anySub) {
      this.#anySub.unsubscribe();
      this.#presenceSub?.unsubscribe();
      this.#anySub = this.#presenceSub = undefined;
      changed = true;
    }
    const lead = leaderEpoch !== undefined && Number.isSafeInteger(leaderEpoch) && leaderEpoch > 0;
    if (lead && !this.#leaderSub) {
      this.#leaderSub = this.#nc.subscribe(this.#subjects.subscriptions.leader, {
        callback: (err, msg) => this.#onMessage(err, msg, 'leader'),
      });
      changed = true;
      this.#log.info('serving leader RPC', { epoch: leaderEpoch });
    } else if (!lead && this.#leaderSub) {
      this.#leaderSub.unsubscribe();
      this.#leaderSub = undefined;
      changed = true;
      this.#log.info('stopped serving leader RPC', { epoch: this.#leaderEpoch });
    }
    this.#leaderEpoch = lead ? leaderEpoch : undefined;
    return changed;
  }

  #schedulePoll(): void {
    if (!this.#o.isLeader && !this.#o.healthy) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#syncSubscriptions();
      if (!this.#closing) this.#schedulePoll();
    }, this.#o.pollIntervalMs);
  }

  #onMessage(err: Error | null, msg: Msg, via: Via): void {
    if (err) {
      this.#log.error('RPC subscription failed', { via, error: err.message });
      return;
    }
    if (!msg.reply) return; // a publish, not a request: nothing to answer
    this.#inFlight++;
    void this.#serve(msg, via).finally(() => {
      this.#inFlight--;
    });
  }

  async #serve(msg: Msg, via: Via): Promise<void> {
    const method = methodOf(msg.subject, this.#subjects.prefixLength);
    let epoch: number | undefined;
    let replyHeaders: MsgHdrs | undefined;
    let admitted: (() => void) | undefined;
    try {
      // A balanced `any` call reached this instance by its node subject: it serves it only while it is in
      // the `any` pool (healthy), as the queue group would.
      if (via === 'node' && !this.#healthy && msg.headers?.get(RpcHeader.Balanced))
        throw new NoInstanceError(this.app, method, 'any', {
          cause: new Error(`instance ${this.nodeId} is not healthy`),
        });
      if (this.#o.admitKey) {
        const raw = msg.headers?.get(RpcHeader.Key);
        if (raw) admitted = await this.#admit(method, raw);
      }
      if (via === 'leader') {
        epoch = this.#currentLeaderEpoch(method, msg.headers);
        replyHeaders = natsHeaders();
        replyHeaders.set(RpcHeader.Epoch, String(epoch));
      }
      const result = await this.#dispatch(msg, method, via, epoch);
      if (result.error) {
        replyHeaders ??= natsHeaders();
        replyHeaders.set(RpcHeader.Error, result.error);
      }
      const max = this.#nc.info?.max_payload ?? Infinity;
      if (result.body.length > max) {
        throw new PayloadTooLargeError(this.app, method, 'reply', result.body.length, max);
      }
      msg.respond(result.body, replyHeaders ? { headers: replyHeaders } : undefined);
    } catch (err) {
      const { code, body } = encodeError(err, this.app, method);
      replyHeaders ??= natsHeaders();
      replyHeaders.set(RpcHeader.Error, code);
      try {
        msg.respond(body, { headers: replyHeaders });
      } catch (e) {
        this.#log.error('could not send an RPC error reply', { method, error: (e as Error).message });
      }
    } finally {
      admitted?.();
    }
  }

  /** Runs the `admitKey` hook; any refusal becomes a {@link NotOwnerError} about this call. */
  async #admit(method: string, raw: string): Promise<() => void> {
    const key = decodeKeyHeader(raw);
    if (key === undefined) throw new BadPayloadError(this.app, method, 'the Gc-Rpc-Key header is malformed');
    try {
      const r = this.#o.admitKey!(key, method);
      return r instanceof Promise ? await r : r;
    } catch (err) {
      if (err instanceof NotOwnerError && err.app === this.app && err.method === method) throw err;
      if (err instanceof NotOwnerError) {
        throw new NotOwnerError(this.app, method, err.nodeId, err.reason, {
          partition: err.partition,
          revision: err.revision,
          ...(err.detail ? { detail: err.detail } : {}),
        });
      }
      throw new NotOwnerError(this.app, method, this.nodeId, 'admission-failed', {
        detail: (err as Error)?.message ?? String(err),
      });
    }
  }

  /** The epoch to serve a leader request under, or a NotLeaderError. */
  #currentLeaderEpoch(method: string, h: MsgHdrs | undefined): number {
    let epoch: number | undefined;
    try {
      epoch = this.#o.isLeader?.() ? this.#o.epoch?.() : undefined;
    } catch (err) {
      this.#log.error('isLeader/epoch hook threw', { error: (err as Error).message });
    }
    if (epoch === undefined || !(epoch > 0)) {
      void this.refresh();
      throw new NotLeaderError(this.app, method, `node ${this.nodeId} is not the leader`);
    }
    const seen = parseEpoch(h?.get(RpcHeader.Epoch));
    if (seen !== undefined && seen > epoch) {
      // The caller has seen a newer leader: this instance was deposed and has not noticed yet.
      void this.refresh();
      throw new NotLeaderError(
        this.app,
        method,
        `the caller has seen leader epoch ${seen}, node ${this.nodeId} serves the older epoch ${epoch}`,
        epoch,
      );
    }
    return epoch;
  }

  async #dispatch(msg: Msg, method: string, via: Via, epoch: number | undefined): Promise<StoredReply> {
    const entry = this.#handlers.get(method);
    if (!entry) throw new UnknownMethodError(this.app, method, this.methods());
    const h = msg.headers;
    const headers = new Map<string, string>();
    if (h) for (const k of h.keys()) headers.set(k, h.get(k));
    const idempotencyKey = headers.get(RpcHeader.IdempotencyKey) || undefined;
    let payload: unknown;
    try {
      payload = decodeJson(msg.data);
    } catch (err) {
      throw new BadPayloadError(
        this.app,
        method,
        `payload is not valid JSON (${(err as Error).message})`,
        [],
        {
          cause: err,
        },
      );
    }
    const running: Running = {
      deadlineMs: this.#clock.now() + entry.timeoutMs,
      timeoutMs: entry.timeoutMs,
      method,
    };
    this.#running.add(running);
    this.#scheduleSweep();
    const span = tracer().startSpan(
      `rpc.server ${this.app}.${method}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'rpc.system': 'gc',
          'rpc.service': this.app,
          'rpc.method': method,
          'gc.node': this.nodeId,
          'gc.rpc.via': via,
        },
      },
      headers.size ? extractTrace(headers) : undefined,
    );
    const ctx = new ServerCtx(
      this.app,
      method,
      headers,
      idempotencyKey,
      this.nodeId,
      via,
      payload,
      epoch,
      running,
      span,
      this.#log,
    );
    try {
      const result = await new Promise<unknown>((resolve, reject) => {
        running.reject = reject;
        runChain(this.#chain, ctx, () => this.#execute(entry, ctx, msg.data)).then(resolve, reject);
      });
      span.setStatus({ code: SpanStatusCode.OK });
      let body: Uint8Array;
      try {
        body = encodeJson(result);
      } catch (err) {
        throw new HandlerError(
          this.app,
          method,
          `returned a value that is not JSON (${(err as Error).message})`,
        );
      }
      return { body };
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      if (
        !(err instanceof Error) ||
        !('code' in err) ||
        !String((err as { code: unknown }).code).startsWith('GC_')
      ) {
        this.#log.warn('handler failed', { method, error: err });
      }
      throw err;
    } finally {
      this.#running.delete(running);
      span.end();
    }
  }

  #scheduleSweep(): void {
    if (this.#sweepTimer) return;
    this.#sweepTimer = this.#clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      const now = this.#clock.now();
      for (const r of this.#running) {
        if (now >= r.deadlineMs && r.reject) {
          const err = new RpcTimeoutError(this.app, r.method, r.timeoutMs, 'handler');
          r.ac?.abort(err);
          r.reject(err);
          r.reject = undefined;
          this.#running.delete(r);
        }
      }
      if (this.#running.size > 0) this.#scheduleSweep();
    }, SWEEP_MS);
  }

  /** Schema check, idempotency, handler. */
  async #execute(entry: Entry, ctx: ServerContext, raw: Uint8Array): Promise<unknown> {
    const value = entry.schema ? await validate(ctx.app, ctx.method, entry.schema, ctx.payload) : ctx.payload;
    const key = ctx.idempotencyKey;
    if (!key) {
      if (entry.idempotent) {
        throw new BadPayloadError(
          ctx.app,
          ctx.method,
          'this method requires an idempotency key (call it with { idempotencyKey })',
        );
      }
      return entry.fn(value, ctx);
    }
    const reply = await this.#idem.execute(
      ctx.app,
      ctx.method,
      key,
      payloadHash(raw),
      this.#clock.now() + entry.timeoutMs,
      async () => {
        try {
          return { body: encodeJson(await entry.fn(value, ctx)) };
        } catch (err) {
          const { code, body } = encodeError(err, ctx.app, ctx.method);
          this.#log.warn('handler failed', { method: ctx.method, error: err });
          return { error: code, body };
        }
      },
    );
    if (reply.error) throw decodeError(ctx.app, ctx.method, reply.error, reply.body, entry.timeoutMs);
    return decodeJson(reply.body);
  }

  close(graceMs = 5000): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#timer) this.#clock.clearTimeout(this.#timer);
      for (const s of [this.#anySub, this.#leaderSub, this.#nodeSub, this.#presenceSub]) {
        try {
          s?.unsubscribe();
        } catch {
          // the connection is already closed: nothing is subscribed
        }
      }
      this.#anySub = this.#leaderSub = this.#nodeSub = this.#presenceSub = undefined;
      const until = this.#clock.now() + graceMs;
      while (this.#inFlight > 0 && this.#clock.now() < until) await this.#clock.sleep(10);
      if (this.#sweepTimer) this.#clock.clearTimeout(this.#sweepTimer);
      for (const r of this.#running) r.ac?.abort(new Error('RPC server closed'));
      if (!this.#nc.isClosed()) await this.#nc.flush().catch(() => undefined);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts serving RPC for one instance of an app: a queue-group subscription for `to: 'any'`, a
 * per-node subscription for `to: { node }`, a leader subscription while `isLeader()` says so, and
 * presence answers for key routing. Register methods with {@link RpcServer.handle}.
 *
 * @example
 * const server = createRpcServer(nc, { platform: 'prod', app: 'orders', nodeId: 'n1' });
 * server.handle('get', async ({ id }: { id: string }) => ({ id, status: 'paid' }));
 */
export function createRpcServer(nc: NatsConnection, opts: RpcServerInit): RpcServer {
  const d = defaultRpcServerOptions();
  const o: RpcServerOptions = {
    ...d,
    ...opts,
    idempotency: { ...d.idempotency, ...opts.idempotency },
  };
  if (!(o.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${o.pollIntervalMs}`);
  if (!(o.handlerTimeoutMs > 0))
    throw new RangeError(`handlerTimeoutMs must be > 0, got ${o.handlerTimeoutMs}`);
  return new Server(nc, o);
}
