import { realClock, type Clock, type Logger, type LogLevel } from '@gc/core';
import { RateLimitedError, UnauthorizedError } from './errors.js';
import type { RpcMetrics } from './metrics.js';
import { RpcHeader } from './codec.js';
import type { ClientContext, Middleware, RpcContextBase, ServerContext } from './types.js';

/** Runs `chain` around `last`; the first middleware is the outermost. */
export function runChain<C extends RpcContextBase>(
  chain: readonly Middleware<C>[],
  ctx: C,
  last: () => Promise<unknown>,
): Promise<unknown> {
  if (chain.length === 0) return last();
  const dispatch = (i: number): Promise<unknown> => {
    const mw = chain[i];
    if (!mw) return last();
    let called = false;
    return mw(ctx, () => {
      if (called) return Promise.reject(new Error(`middleware #${i} called next() twice`));
      called = true;
      return dispatch(i + 1);
    });
  };
  return dispatch(0);
}

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' ? c : 'GC_RPC_HANDLER_ERROR';
}

/** Options of {@link loggingMiddleware}. */
export interface LoggingMiddlewareOptions {
  /** Level of successful calls. Default `debug`. */
  level: Exclude<LogLevel, 'silent'>;
  /** Level of failed calls. Default `warn`. */
  errorLevel: Exclude<LogLevel, 'silent'>;
  /** Clock for durations. Default the real clock. */
  clock: Clock;
}

/**
 * Logs each call (client) or request (server) with app, method, duration in ms and result code.
 * Works on both sides.
 */
export function loggingMiddleware(
  logger: Logger,
  opts: Partial<LoggingMiddlewareOptions> = {},
): Middleware<RpcContextBase> {
  const o = { level: 'debug' as const, errorLevel: 'warn' as const, clock: realClock, ...opts };
  return async (ctx, next) => {
    const start = o.clock.now();
    try {
      const result = await next();
      if (logger.isEnabled(o.level)) {
        logger[o.level](`rpc ${ctx.side} ${ctx.app}.${ctx.method} ok`, {
          side: ctx.side,
          app: ctx.app,
          method: ctx.method,
          durationMs: Math.round((o.clock.now() - start) * 1000) / 1000,
        });
      }
      return result;
    } catch (err) {
      logger[o.errorLevel](`rpc ${ctx.side} ${ctx.app}.${ctx.method} failed`, {
        side: ctx.side,
        app: ctx.app,
        method: ctx.method,
        code: codeOf(err),
        durationMs: Math.round((o.clock.now() - start) * 1000) / 1000,
        error: (err as Error)?.message,
      });
      throw err;
    }
  };
}

/**
 * Records calls, errors by code, latency and in-flight count in {@link RpcMetrics}. The client and
 * the server install it as their outermost middleware when given a `registry`; use it directly to
 * place it elsewhere in a chain.
 */
export function metricsMiddleware(metrics: RpcMetrics): Middleware<RpcContextBase> {
  return async (ctx, next) => {
    const endTimer = metrics.duration.startTimer({ side: ctx.side, app: ctx.app, method: ctx.method });
    const gauge = metrics.inFlight.labels(ctx.side, ctx.app);
    gauge.inc();
    try {
      const result = await next();
      metrics.calls.inc({ side: ctx.side, app: ctx.app, method: ctx.method, code: 'OK' });
      return result;
    } catch (err) {
      const code = codeOf(err);
      metrics.calls.inc({ side: ctx.side, app: ctx.app, method: ctx.method, code });
      metrics.errors.inc({ side: ctx.side, app: ctx.app, method: ctx.method, code });
      throw err;
    } finally {
      gauge.dec();
      endTimer();
    }
  };
}

/**
 * Client auth: sends a bearer token in the `Gc-Rpc-Auth` header (a string, or a function called per
 * call, for example to rotate tokens).
 */
export function clientAuthMiddleware(
  token: string | ((ctx: ClientContext) => string),
): Middleware<ClientContext> {
  return (ctx, next) => {
    ctx.headers.set(RpcHeader.Auth, typeof token === 'string' ? token : token(ctx));
    return next();
  };
}

/**
 * Server auth: calls `verify` with the caller's `Gc-Rpc-Auth` token (undefined when absent); a false
 * result refuses the call with `GC_RPC_UNAUTHORIZED` before the handler runs. NATS permissions remain
 * the first line of defence; this checks who the caller is inside an account.
 */
export function serverAuthMiddleware(
  verify: (token: string | undefined, ctx: ServerContext) => boolean | Promise<boolean>,
): Middleware<ServerContext> {
  return async (ctx, next) => {
    const token = ctx.headers.get(RpcHeader.Auth);
    if (!(await verify(token, ctx))) {
      throw new UnauthorizedError(
        ctx.app,
        ctx.method,
        token === undefined ? 'no auth token was sent' : 'the auth token was not accepted',
      );
    }
    return next();
  };
}

/** Options of {@link rateLimitMiddleware}. */
export interface RateLimitOptions {
  /** Sustained rate, in calls per second. Required. */
  ratePerSecond: number;
  /** Calls allowed in a burst above the rate. Default `ratePerSecond` (one second's worth). */
  burst: number;
  /** One bucket per what: `app`, `method` (app + method) or `global`. Default `method`. */
  per: 'global' | 'app' | 'method';
  /** Clock. Default the real clock. */
  clock: Clock;
}

/**
 * Token-bucket rate limit. Over the limit a call is refused at once with `GC_RPC_RATE_LIMITED`
 * (the handler does not run). Works on both sides.
 */
export function rateLimitMiddleware(
  opts: Partial<RateLimitOptions> & Pick<RateLimitOptions, 'ratePerSecond'>,
): Middleware<RpcContextBase> {
  const o: RateLimitOptions = { burst: opts.ratePerSecond, per: 'method', clock: realClock, ...opts };
  if (!(o.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be > 0, got ${o.ratePerSecond}`);
  if (!(o.burst >= 1)) throw new RangeError(`burst must be >= 1, got ${o.burst}`);
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (ctx, next) => {
    const key = o.per === 'global' ? '' : o.per === 'app' ? ctx.app : `${ctx.app}.${ctx.method}`;
    const now = o.clock.now();
    let b = buckets.get(key);
    if (!b) {
      b = { tokens: o.burst, at: now };
      buckets.set(key, b);
    }
    b.tokens = Math.min(o.burst, b.tokens + ((now - b.at) / 1000) * o.ratePerSecond);
    b.at = now;
    if (b.tokens < 1)
      return Promise.reject(new RateLimitedError(ctx.app, ctx.method, o.ratePerSecond, ctx.side));
    b.tokens -= 1;
    return next();
  };
}
