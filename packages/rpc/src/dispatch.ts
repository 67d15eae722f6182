// Running one request on a server instance: the handler table, the middleware chain, payload schema
// checks, idempotency, handler deadlines (one sweep timer) and the server span.
import type { Clock, Logger } from '@gc/core';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { decodeError, decodeJson, encodeError, encodeJson, RpcHeader } from './codec.js';
import { BadPayloadError, HandlerError, RpcTimeoutError, UnknownMethodError } from './errors.js';
import { IdempotencyStore, idempotencyBucket, payloadHash, type StoredReply } from './idempotency.js';
import { rpcMetrics } from './metrics.js';
import { metricsMiddleware, runChain } from './middleware.js';
import { validateMethod } from './subjects.js';
import { extractTrace, tracer } from './tracing.js';
import type {
  HandleOptions,
  Handler,
  Middleware,
  PayloadSchema,
  RpcServerOptions,
  ServerContext,
} from './types.js';

interface Entry {
  fn: Handler<unknown, unknown>;
  schema: PayloadSchema | undefined;
  timeoutMs: number;
  idempotent: boolean;
}

/** The subscription a request came in on. */
export type Via = 'any' | 'leader' | 'node';

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

/** The methods of one server instance and how a request to one of them is run. */
export class Dispatcher {
  readonly app: string;
  readonly nodeId: string;
  readonly #o: RpcServerOptions;
  readonly #handlers = new Map<string, Entry>();
  readonly #chain: Middleware<ServerContext>[];
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #idem: IdempotencyStore;
  readonly #running = new Set<Running>();
  #sweepTimer: object | undefined;

  constructor(
    nc: NatsConnection,
    o: RpcServerOptions,
    platform: string,
    app: string,
    nodeId: string,
    log: Logger,
    clock: Clock,
  ) {
    this.#o = o;
    this.app = app;
    this.nodeId = nodeId;
    this.#log = log;
    this.#clock = clock;
    this.#chain = o.registry
      ? [metricsMiddleware(rpcMetrics(o.registry)), ...o.middleware]
      : [...o.middleware];
    this.#idem = new IdempotencyStore(
      nc,
      idempotencyBucket(platform, this.app),
      this.nodeId,
      o.idempotency,
      this.#log,
      this.#clock,
    );
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

  async dispatch(msg: Msg, method: string, via: Via, epoch: number | undefined): Promise<StoredReply> {
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

  /** Stops the deadline sweep and aborts the handlers still running (the server is closing). */
  close(): void {
    if (this.#sweepTimer) this.#clock.clearTimeout(this.#sweepTimer);
    for (const r of this.#running) r.ac?.abort(new Error('RPC server closed'));
  }
}
