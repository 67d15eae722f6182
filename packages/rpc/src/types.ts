import type { Clock, Closable, Logger } from '@gc/core';
import type { Span } from '@opentelemetry/api';
import type { Registry } from 'prom-client';

/**
 * A payload schema: anything that implements the Standard Schema interface
 * (https://standardschema.dev), which zod (3.24+ and 4), valibot and arktype schemas do.
 * Only the validation entry point is used.
 */
export interface PayloadSchema<Out = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Out> | Promise<StandardResult<Out>>;
  };
}

/** Result of a Standard Schema validation. */
export type StandardResult<Out> =
  | { readonly value: Out; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

/** Where a call goes. */
export type CallTarget =
  /** Any healthy instance (NATS queue group: the server picks one at random). */
  | 'any'
  /** The current leader; the call is fenced by the leader's epoch. */
  | 'leader'
  /** The instance that owns `key` (the `route` hook, else rendezvous hashing over healthy instances). */
  | { readonly key: string }
  /** One instance by node id. */
  | { readonly node: string };

/** Fields shared by the client's and the server's middleware context. */
export interface RpcContextBase {
  /** `client` in client middleware, `server` in server middleware. */
  readonly side: 'client' | 'server';
  /** The called app. */
  readonly app: string;
  /** The called method. */
  readonly method: string;
  /**
   * Headers sent with the request (client: add to them; server: what arrived). Names starting with
   * `Gc-` and the W3C `traceparent`/`tracestate` are used by gc.
   */
  readonly headers: Map<string, string>;
  /** The idempotency key of the call, if it has one. */
  readonly idempotencyKey: string | undefined;
  /** Free slot for middleware to pass values down the chain. */
  readonly locals: Map<string, unknown>;
}

/** Context of client middleware: one per call (retries happen inside `next`). */
export interface ClientContext extends RpcContextBase {
  readonly side: 'client';
  /** The payload as given to `call` (not yet encoded). */
  readonly payload: unknown;
  /** The routing target. */
  readonly to: CallTarget;
  /** Time limit of one attempt, in ms. */
  readonly timeoutMs: number;
}

/** Context of server middleware and handlers: one per request. */
export interface ServerContext extends RpcContextBase {
  readonly side: 'server';
  /** This instance's node id. */
  readonly nodeId: string;
  /** How the request was addressed: `any`, `leader` or `node`. */
  readonly via: 'any' | 'leader' | 'node';
  /** The decoded payload (before schema validation in middleware; validated in the handler). */
  readonly payload: unknown;
  /** The leader epoch this instance serves under, for leader requests. */
  readonly epoch: number | undefined;
  /** Aborted when the handler's time limit passes or the server closes. */
  readonly signal: AbortSignal;
  /** The handler's span (a no-op span when no OpenTelemetry SDK is registered). */
  readonly span: Span;
  /** A logger bound to app, method and node. */
  readonly log: Logger;
}

/**
 * Middleware: `(ctx, next) => result`. Call `next()` to continue the chain and return (or transform)
 * its result; throw to refuse. The first middleware in the list is the outermost.
 */
export type Middleware<C extends RpcContextBase = RpcContextBase> = (
  ctx: C,
  next: () => Promise<unknown>,
) => Promise<unknown>;

/** A request handler. Returns any JSON-serializable value (or undefined). */
export type Handler<In = unknown, Out = unknown> = (payload: In, ctx: ServerContext) => Out | Promise<Out>;

/** Options of {@link RpcServer.handle}. */
export interface HandleOptions<In = unknown> {
  /** Validates (and may transform) the payload before the handler runs. Default none. */
  schema?: PayloadSchema<In>;
  /** Time limit of the handler, in ms. Default the server's `handlerTimeoutMs`. */
  timeoutMs?: number;
  /**
   * The method has side effects that must not repeat: calls without an idempotency key are refused
   * with `GC_RPC_BAD_PAYLOAD`. Calls that carry a key are deduplicated on every method. Default false.
   */
  idempotent?: boolean;
}

/** Options of {@link createRpcServer}. */
export interface RpcServerOptions {
  /** Platform name. Required. */
  platform: string;
  /** App name. Required. */
  app: string;
  /** This instance's node id. Required. */
  nodeId: string;
  /**
   * Whether this instance is the leader now (the platform plugs the election in). Without it the
   * instance never serves `to: 'leader'`. Default none.
   */
  isLeader?: () => boolean;
  /** The leader epoch of this instance (only read while `isLeader()`). Default none. */
  epoch?: () => number | undefined;
  /** Whether this instance is healthy; an unhealthy one leaves the `any` queue group and presence. Default always healthy. */
  healthy?: () => boolean;
  /**
   * Admission of key-routed requests (those sent with `to: { key }`, which carry the `Gc-Rpc-Key` header):
   * refuse the ones this instance does not own, count the ones it runs. Default none (all admitted).
   */
  admitKey?: AdmitKeyHook;
  /** How often `isLeader`/`healthy` are polled, in ms (call {@link RpcServer.refresh} for an immediate check). Default 100. */
  pollIntervalMs: number;
  /** Default handler time limit, in ms. Default 5000. */
  handlerTimeoutMs: number;
  /** Server middleware, outermost first. Default none. */
  middleware: Middleware<ServerContext>[];
  /** Prometheus registry for RPC metrics. Default none (no metrics). */
  registry?: Registry;
  /** Idempotency store settings. */
  idempotency: IdempotencyOptions;
  /** Logger. Default a logger named `gc-rpc`. */
  logger?: Logger;
  /** Clock for timers. Default the real clock. */
  clock?: Clock;
}

/** Settings of the idempotency store (a JetStream KV bucket `{platform}_{app}_rpc_idem`). */
export interface IdempotencyOptions {
  /** How long a stored result is kept, in ms (bucket max age). Default 86 400 000 (24 h). */
  retentionMs: number;
  /**
   * How long a claim of a running execution lives without a heartbeat, in ms; an instance that
   * crashed mid-execution loses its claim after this and a retry runs the handler again. The
   * executing instance renews the claim every `claimTtlMs / 3`. Default 10 000.
   */
  claimTtlMs: number;
  /** Poll interval of a duplicate waiting for the first execution's result, in ms. Default 25. */
  pollIntervalMs: number;
  /** How long the executor keeps trying to store a result while JetStream is unavailable, in ms. Default 30 000. */
  storeRetryMs: number;
  /** Bucket replicas (1, 3 or 5). Default 1. */
  replicas: number;
}

/** A running RPC server of one app instance. */
export interface RpcServer extends Closable {
  /** Platform name. */
  readonly platform: string;
  /** App name. */
  readonly app: string;
  /** This instance's node id. */
  readonly nodeId: string;
  /**
   * Registers the handler of `method` (a single subject token). Replaces an earlier handler of the
   * same method. Throws `GC_INVALID_NAME` for a bad method name.
   */
  handle<In = unknown, Out = unknown>(method: string, fn: Handler<In, Out>, opts?: HandleOptions<In>): void;
  /** Removes the handler of `method`; later calls get `GC_RPC_UNKNOWN_METHOD`. */
  unhandle(method: string): void;
  /** Methods with a handler. */
  methods(): string[];
  /** Re-reads `isLeader`/`healthy` now and (un)subscribes accordingly; resolves once the server has the change. */
  refresh(): Promise<void>;
  /** True while this instance serves the leader subject. */
  readonly servingLeader: boolean;
  /** Requests being handled right now. */
  readonly inFlight: number;
  /**
   * Stops serving: unsubscribes, waits up to `graceMs` (default 5000) for running handlers. Idempotent: a
   * second call waits for the first, whose `graceMs` applies.
   */
  close(graceMs?: number): Promise<void>;
}

/** Retry settings (cockatiel retry with exponential backoff and jitter). */
export interface RetryOptions {
  /** Retries after the first attempt. Default 2. */
  retries: number;
  /** First backoff delay, in ms. Default 50. */
  initialDelayMs: number;
  /** Longest backoff delay, in ms. Default 1000. */
  maxDelayMs: number;
}

/**
 * Circuit breaker settings (consecutive failures, timed on the client's `clock`), one breaker per app and
 * target.
 */
export interface CircuitOptions {
  /**
   * Consecutive failures (timeouts, handler errors, unreadable replies) that open the circuit. Default 5.
   * "No instance" does not count: NATS reports it at once, and it is expected during a failover.
   */
  consecutiveFailures: number;
  /** Time the circuit stays open before one trial call is let through (half-open), in ms. Default 5000. */
  halfOpenAfterMs: number;
}

/** Bulkhead settings (cockatiel bulkhead), one per called app. */
export interface BulkheadOptions {
  /** Calls in flight at most. Default 512. */
  maxInFlight: number;
  /** Calls waiting for a slot at most; more are refused with `GC_RPC_BULKHEAD_FULL`. Default 4096. */
  maxQueued: number;
}

/**
 * Why the previous attempt of a key-routed call failed before its handler ran: the node it was sent to
 * and the error (`GC_RPC_NOT_OWNER` from that node, or `GC_RPC_NO_INSTANCE` when the node is gone).
 */
export interface RouteRetry {
  /** The node the failed attempt went to. */
  readonly node: string;
  /** The error of that attempt (a `NotOwnerError` carries the partition and the record revision it knew). */
  readonly error: Error;
}

/**
 * Maps a key to the node that owns it (the ring package plugs in here). Return undefined to fall back
 * to rendezvous hashing over the app's healthy instances. On a retry after the owner refused the call
 * (`GC_RPC_NOT_OWNER`) or was gone (`GC_RPC_NO_INSTANCE`), `previous` tells which node failed and how, so
 * the hook can hold the call until the key has a new owner. The hook may wait (return a promise) and may
 * throw a typed error to fail the call.
 */
export type RouteHook = (
  app: string,
  key: string,
  previous?: RouteRetry,
) => string | undefined | Promise<string | undefined>;

/**
 * Admits a key-routed request on a server (the ring package plugs in here): called with the call's key
 * before middleware and handler. Returns the function to call when the request is done (for drains), or
 * throws a `NotOwnerError` when this instance does not serve the key (any other throw is turned into one).
 */
export type AdmitKeyHook = (key: string, method: string) => (() => void) | Promise<() => void>;

/** Options of {@link createRpcClient}. */
export interface RpcClientOptions {
  /** Platform name. Required. */
  platform: string;
  /** Caller name sent in the `Gc-Rpc-Caller` header (for example the calling app). Default none. */
  caller?: string;
  /** Time limit of one attempt, in ms. Default 5000. */
  timeoutMs: number;
  /** Retry settings. */
  retry: RetryOptions;
  /** Circuit breaker settings. */
  circuit: CircuitOptions;
  /** Bulkhead settings. */
  bulkhead: BulkheadOptions;
  /** Client middleware, outermost first. Default none. */
  middleware: Middleware<ClientContext>[];
  /** Key routing hook. Default none (rendezvous hashing over healthy instances). */
  route?: RouteHook;
  /** How long presence replies are collected when the client looks up an app's instances, in ms. Default 50. */
  discoveryWaitMs: number;
  /** How long a looked-up instance list is reused, in ms. Default 2000. */
  discoveryTtlMs: number;
  /** Prometheus registry for RPC metrics. Default none (no metrics). */
  registry?: Registry;
  /** Logger. Default a logger named `gc-rpc`. */
  logger?: Logger;
  /**
   * Clock of the circuit breakers (when an open circuit half-opens). Default the real clock. Call time
   * limits (NATS request timeouts) and retry backoff run on real time.
   */
  clock?: Clock;
}

/** Options of one call. */
export interface CallOptions {
  /** Target. Default `any`. */
  to: CallTarget;
  /** Time limit of one attempt, in ms. Default the client's `timeoutMs`. */
  timeoutMs: number;
  /**
   * Retries after the first attempt. Default the client's `retry.retries`. Calls whose handler did not
   * run (no instance, not leader) are always retried; timeouts, connection loss and fenced replies only
   * when the call is idempotent (has an `idempotencyKey` or `idempotent: true`).
   */
  retries: number;
  /** Exactly-once key: the server runs the handler once per key and returns the stored result to repeats. */
  idempotencyKey?: string;
  /** The call is safe to repeat without a key (a read). Default false. */
  idempotent?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** The calls to one app. */
export interface AppApi {
  /** The app's name. */
  readonly app: string;
  /**
   * Calls `method` with a JSON-serializable `payload` and resolves with the handler's result.
   * Rejects with a typed error (see `RpcErrorCode`).
   */
  call<T = unknown>(method: string, payload?: unknown, opts?: Partial<CallOptions>): Promise<T>;
  /**
   * Node ids of the app's healthy instances, sorted: the presence answers collected for `waitMs` (default
   * the client's `discoveryWaitMs`), looked up now (not the cached list `to: 'any'` uses).
   */
  instances(opts?: { waitMs?: number }): Promise<string[]>;
}

/**
 * State of a circuit: `closed`, `open` or `half-open`. (`isolated`, a circuit held open by hand, is kept
 * in the type for compatibility; gc's breakers never report it.)
 */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/** An RPC client for one platform. */
export interface RpcClient extends Closable {
  /** Platform name. */
  readonly platform: string;
  /** The calls to `app` (validates the name; cached per app). */
  api(app: string): AppApi;
  /** The highest leader epoch seen in replies from `app` (0 before any). */
  leaderEpoch(app: string): number;
  /** Circuit state per `app/target` (`orders/any`, `orders/leader`, `orders/node:n1`). */
  circuits(): Record<string, CircuitStateName>;
  /** Calls in flight. */
  readonly inFlight: number;
  /** Refuses new calls and waits for calls in flight. Idempotent. */
  close(): Promise<void>;
}

/** What {@link createRpcServer} takes: the required fields, and any option (nested ones partly). */
export type RpcServerInit = Partial<Omit<RpcServerOptions, 'idempotency'>> &
  Pick<RpcServerOptions, 'platform' | 'app' | 'nodeId'> & { idempotency?: Partial<IdempotencyOptions> };

/** What {@link createRpcClient} takes: the required `platform`, and any option (nested ones partly). */
export type RpcClientInit = Partial<Omit<RpcClientOptions, 'retry' | 'circuit' | 'bulkhead'>> &
  Pick<RpcClientOptions, 'platform'> & {
    retry?: Partial<RetryOptions>;
    circuit?: Partial<CircuitOptions>;
    bulkhead?: Partial<BulkheadOptions>;
  };
