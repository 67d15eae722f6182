// The RPC client of a platform: the calls of each app through the middleware chain, the bulkhead, retries
// and circuit breakers (policy.ts), to a target (targets.ts), with leader epoch fencing of the replies.
import {
  ClosableResource,
  ClosedError,
  createLogger,
  parseEpoch,
  resourceNames,
  withoutStacks,
  type Logger,
} from '@gc/core';
import {
  headers as natsHeaders,
  RequestError,
  TimeoutError as NatsTimeoutError,
  NoRespondersError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BulkheadRejectedError, bulkhead, type BulkheadPolicy } from 'cockatiel';
import { decodeError, decodeJson, encodeJson, encodeKeyHeader, RpcHeader } from './codec.js';
import {
  BadPayloadError,
  BulkheadFullError,
  CircuitOpenError,
  NoInstanceError,
  PayloadTooLargeError,
  ProtocolError,
  RpcErrorCode,
  RpcFencedError,
  RpcTimeoutError,
} from './errors.js';
import { rpcMetrics } from './metrics.js';
import { CallPolicies, codeOf, defaultRpcClientOptions, headerBytes, REROUTE } from './policy.js';
import { metricsMiddleware, runChain } from './middleware.js';
import { rpcSubjects, validateMethod, validateRpcApp, type RpcSubjects } from './subjects.js';
import { Targets, type Target } from './targets.js';
import { injectTrace, tracer } from './tracing.js';
import type {
  AppApi,
  CallOptions,
  CircuitStateName,
  ClientContext,
  Middleware,
  RpcClient,
  RpcClientInit,
  RpcClientOptions,
} from './types.js';

class AppApiImpl implements AppApi {
  readonly app: string;
  readonly subjects: RpcSubjects;
  readonly bulkhead: BulkheadPolicy;
  readonly #client: Client;

  constructor(client: Client, app: string, subjects: RpcSubjects, bh: BulkheadPolicy) {
    this.#client = client;
    this.app = app;
    this.subjects = subjects;
    this.bulkhead = bh;
  }

  call<T = unknown>(method: string, payload?: unknown, opts?: Partial<CallOptions>): Promise<T> {
    return this.#client.call(this, method, payload, opts) as Promise<T>;
  }

  instances(opts?: { waitMs?: number }): Promise<string[]> {
    return this.#client.lookup(this.app, opts?.waitMs);
  }
}

class Client extends ClosableResource implements RpcClient {
  readonly platform: string;
  readonly #nc: NatsConnection;
  readonly #o: RpcClientOptions;
  readonly #log: Logger;
  readonly #chain: Middleware<ClientContext>[];
  readonly #apis = new Map<string, AppApiImpl>();
  readonly #policies: CallPolicies;
  readonly #epochs = new Map<string, number>();
  readonly #targets: Targets;
  #inFlight = 0;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(nc: NatsConnection, o: RpcClientOptions) {
    super();
    this.#nc = nc;
    this.#o = o;
    this.platform = resourceNames(o.platform).platform;
    this.#log = (o.logger ?? createLogger({ name: 'gc-rpc' })).child({ platform: this.platform });
    const metrics = o.registry ? rpcMetrics(o.registry) : undefined;
    this.#chain = metrics ? [metricsMiddleware(metrics), ...o.middleware] : [...o.middleware];
    this.#policies = new CallPolicies(o, metrics, this.#log);
    this.#targets = new Targets(nc, o, this.platform, this.#log);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  api(app: string): AppApi {
    let a = this.#apis.get(app);
    if (!a) {
      validateRpcApp(app);
      a = new AppApiImpl(
        this,
        app,
        rpcSubjects(this.platform, app),
        bulkhead(this.#o.bulkhead.maxInFlight, this.#o.bulkhead.maxQueued),
      );
      this.#apis.set(app, a);
    }
    return a;
  }

  /** A fresh instance lookup of `app` (see AppApi.instances). */
  lookup(app: string, waitMs: number | undefined): Promise<string[]> {
    if (this.#closed) return Promise.reject(new ClosedError('RPC client'));
    return this.#targets.lookup(app, waitMs ?? this.#o.discoveryWaitMs);
  }

  leaderEpoch(app: string): number {
    return this.#epochs.get(app) ?? 0;
  }

  circuits(): Record<string, CircuitStateName> {
    return this.#policies.circuits();
  }

  async call(
    api: AppApiImpl,
    method: string,
    payload: unknown,
    opts?: Partial<CallOptions>,
  ): Promise<unknown> {
    if (this.#closed) throw new ClosedError('RPC client');
    validateMethod(method);
    const to = opts?.to ?? 'any';
    const timeoutMs = opts?.timeoutMs ?? this.#o.timeoutMs;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
    const retries = opts?.retries ?? this.#o.retry.retries;
    const idempotencyKey = opts?.idempotencyKey;
    if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0)) {
      throw new BadPayloadError(api.app, method, 'idempotencyKey must be a non-empty string');
    }
    const headers = new Map<string, string>();
    if (opts?.headers) for (const [k, v] of Object.entries(opts.headers)) headers.set(k, v);
    if (this.#o.caller) headers.set(RpcHeader.Caller, this.#o.caller);
    if (idempotencyKey) headers.set(RpcHeader.IdempotencyKey, idempotencyKey);
    if (typeof to === 'object' && to !== null && 'key' in to && typeof to.key === 'string' && to.key) {
      try {
        headers.set(RpcHeader.Key, encodeKeyHeader(to.key));
      } catch (err) {
        throw new BadPayloadError(
          api.app,
          method,
          'routing key is not valid Unicode (a lone surrogate)',
          [],
          {
            cause: err,
          },
        );
      }
    }
    const ctx: ClientContext = {
      side: 'client',
      app: api.app,
      method,
      headers,
      idempotencyKey,
      locals: new Map(),
      payload,
      to,
      timeoutMs,
    };
    const idempotent = idempotencyKey !== undefined || opts?.idempotent === true;
    const span = tracer().startSpan(`rpc.client ${api.app}.${method}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'rpc.system': 'gc', 'rpc.service': api.app, 'rpc.method': method },
    });
    const spanCtx = trace.setSpan(context.active(), span);
    this.#inFlight++;
    try {
      const result = await context.with(spanCtx, () =>
        runChain(this.#chain, ctx, () => this.#resilient(api, ctx, retries, idempotent, spanCtx)),
      );
      span.setStatus({ code: SpanStatusCode.OK });
      return result;
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      span.end();
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  async #resilient(
    api: AppApiImpl,
    ctx: ClientContext,
    retries: number,
    idempotent: boolean,
    spanCtx: ReturnType<typeof context.active>,
  ): Promise<unknown> {
    let data: Uint8Array;
    try {
      data = encodeJson(ctx.payload);
    } catch (err) {
      throw new BadPayloadError(
        api.app,
        ctx.method,
        `payload is not JSON-serializable (${(err as Error).message})`,
        [],
        {
          cause: err,
        },
      );
    }
    injectTrace(spanCtx, ctx.headers);
    const max = this.#nc.info?.max_payload ?? Infinity;
    const size = data.length + (ctx.headers.size ? headerBytes(ctx.headers) + 20 : 0);
    if (size > max) throw new PayloadTooLargeError(api.app, ctx.method, 'request', size, max);
    // A key-routed retry tells the route hook which node failed and how, so it can hold the call for the
    // key's next owner instead of sending it to the same place again.
    const route: { node?: string; previous?: { node: string; error: Error } } = {};
    const attempt = async () => {
      try {
        return await this.#attempt(api, ctx, data, route);
      } catch (err) {
        if (route.node !== undefined && REROUTE.has(codeOf(err))) {
          route.previous = { node: route.node, error: err as Error };
        }
        throw err;
      }
    };
    try {
      return await api.bulkhead.execute(() =>
        retries > 0 ? this.#policies.retry(retries, idempotent).execute(attempt) : attempt(),
      );
    } catch (err) {
      if (err instanceof BulkheadRejectedError) {
        throw new BulkheadFullError(
          api.app,
          ctx.method,
          this.#o.bulkhead.maxInFlight,
          this.#o.bulkhead.maxQueued,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async #attempt(
    api: AppApiImpl,
    ctx: ClientContext,
    data: Uint8Array,
    route: { node?: string; previous?: { node: string; error: Error } },
  ): Promise<unknown> {
    route.node = undefined;
    const t = this.#targets.target(api, ctx.method, ctx.to, route.previous);
    const target = t instanceof Promise ? await t : t;
    route.node = target.node;
    const breaker = this.#policies.breaker(api.app, target.name);
    const counted = ctx.to === 'any' && target.node !== undefined ? target.node : undefined;
    if (counted !== undefined) this.#targets.track(api.app, counted, 1);
    try {
      return await breaker.execute(
        () => this.#request(api, ctx, data, target),
        () => new CircuitOpenError(api.app, ctx.method, target.name),
      );
    } catch (err) {
      if (target.node && codeOf(err) === RpcErrorCode.NoInstance) this.#targets.forget(api.app);
      throw err;
    } finally {
      if (counted !== undefined) this.#targets.track(api.app, counted, -1);
    }
  }

  async #request(api: AppApiImpl, ctx: ClientContext, data: Uint8Array, target: Target): Promise<unknown> {
    const leader = target.name === 'leader';
    const seen = leader ? (this.#epochs.get(api.app) ?? 0) : 0;
    const balanced = target.name === 'any' && target.node !== undefined;
    let h: MsgHdrs | undefined;
    if (ctx.headers.size || seen > 0 || balanced) {
      h = natsHeaders();
      for (const [k, v] of ctx.headers) h.set(k, v);
      if (seen > 0) h.set(RpcHeader.Epoch, String(seen));
      if (balanced) h.set(RpcHeader.Balanced, '1');
    }
    let msg: Msg;
    // nats.js builds two Error objects per request up front (for async stack traces). Their stacks are
    // never shown (failures become typed RPC errors), and capturing them under this call chain's deep
    // async stack is the largest CPU cost of a call; capture none.
    let pending: Promise<Msg>;
    try {
      pending = withoutStacks(() =>
        this.#nc.request(
          target.subject,
          data,
          h ? { timeout: ctx.timeoutMs, headers: h } : { timeout: ctx.timeoutMs },
        ),
      );
    } catch (err) {
      throw this.#requestError(api.app, ctx.method, target.name, ctx.timeoutMs, err);
    }
    try {
      msg = await pending;
    } catch (err) {
      throw this.#requestError(api.app, ctx.method, target.name, ctx.timeoutMs, err);
    }
    const mh = msg.headers;
    const code = mh?.get(RpcHeader.Error) || undefined;
    if (leader) {
      const epoch = parseEpoch(mh?.get(RpcHeader.Epoch));
      if (epoch === undefined) {
        if (!code) throw new ProtocolError(api.app, ctx.method, 'a leader reply without a Gc-Epoch header');
      } else {
        const highest = this.#epochs.get(api.app) ?? 0;
        if (epoch < highest) throw new RpcFencedError(api.app, ctx.method, epoch, highest);
        if (epoch > highest) this.#epochs.set(api.app, epoch);
      }
    }
    if (code) throw decodeError(api.app, ctx.method, code, msg.data, ctx.timeoutMs);
    try {
      return decodeJson(msg.data);
    } catch (err) {
      throw new ProtocolError(api.app, ctx.method, `the reply is not JSON (${(err as Error).message})`, {
        cause: err,
      });
    }
  }

  #requestError(app: string, method: string, target: string, timeoutMs: number, err: unknown): Error {
    const cause = (err as Error)?.cause;
    if (
      err instanceof NoRespondersError ||
      cause instanceof NoRespondersError ||
      (err instanceof RequestError && err.isNoResponders())
    ) {
      return new NoInstanceError(app, method, target, { cause: err });
    }
    if (err instanceof NatsTimeoutError || cause instanceof NatsTimeoutError) {
      return new RpcTimeoutError(app, method, timeoutMs, 'call', { cause: err });
    }
    const e = err as Error;
    if (e?.name === 'ClosedConnectionError' || e?.name === 'DrainingConnectionError') {
      const c = new ClosedError('NATS connection of the RPC client');
      return Object.assign(c, { cause: err });
    }
    // nats.js has no typed error or code for this: a generic InvalidArgumentError, told apart by its message.
    if (e?.name === 'InvalidArgumentError' && /payload|max_payload|too large/i.test(e.message)) {
      return new PayloadTooLargeError(app, method, 'request', -1, this.#nc.info?.max_payload ?? -1);
    }
    return e instanceof Error ? e : new Error(String(err));
  }

  protected closeResources(): Promise<void> {
    this.#closed = true;
    return this.#inFlight === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
  }
}

/**
 * Creates the RPC client of a platform. `api(app).call(method, payload, { to })` routes to any
 * instance, the leader (fenced by its epoch), the owner of a key, or one node; every call has a time
 * limit, retries with backoff where safe, a circuit breaker per target and a bulkhead per app.
 *
 * @example
 * const rpc = createRpcClient(nc, { platform: 'prod' });
 * const order = await rpc.api('orders').call('get', { id: '42' }, { to: 'leader' });
 */
export function createRpcClient(nc: NatsConnection, opts: RpcClientInit): RpcClient {
  const d = defaultRpcClientOptions();
  const o: RpcClientOptions = {
    ...d,
    ...opts,
    retry: { ...d.retry, ...opts.retry },
    circuit: { ...d.circuit, ...opts.circuit },
    bulkhead: { ...d.bulkhead, ...opts.bulkhead },
  };
  if (!(o.timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${o.timeoutMs}`);
  if (!(o.retry.retries >= 0)) throw new RangeError(`retry.retries must be >= 0, got ${o.retry.retries}`);
  if (!(o.circuit.consecutiveFailures >= 1)) {
    throw new RangeError(`circuit.consecutiveFailures must be >= 1, got ${o.circuit.consecutiveFailures}`);
  }
  if (!(o.circuit.halfOpenAfterMs >= 0)) {
    throw new RangeError(`circuit.halfOpenAfterMs must be >= 0, got ${o.circuit.halfOpenAfterMs}`);
  }
  if (!(o.bulkhead.maxInFlight >= 1)) throw new RangeError(`bulkhead.maxInFlight must be >= 1`);
  return new Client(nc, o);
}
