// The RPC client's policy: default options, which failures are retried or trip a circuit breaker, the
// retry policies (cockatiel) and circuit breakers (breaker.ts) themselves, and rendezvous hashing of keys
// to nodes.
import { realClock, type Clock, type Logger } from '@gc/core';
import { ExponentialBackoff, handleWhen, retry, type RetryPolicy } from 'cockatiel';
import { CircuitBreaker } from './breaker.js';
import { RpcErrorCode } from './errors.js';
import type { RpcMetrics } from './metrics.js';
import type { CircuitStateName, RpcClientOptions } from './types.js';

/** Defaults for {@link RpcClientOptions} (the required `platform` is empty). */
export function defaultRpcClientOptions(): RpcClientOptions {
  return {
    platform: '',
    timeoutMs: 5000,
    retry: { retries: 2, initialDelayMs: 50, maxDelayMs: 1000 },
    circuit: { consecutiveFailures: 5, halfOpenAfterMs: 5000 },
    bulkhead: { maxInFlight: 512, maxQueued: 4096 },
    middleware: [],
    discoveryWaitMs: 50,
    discoveryTtlMs: 2000,
  };
}

/** Errors after which the handler certainly did not run: always safe to retry. */
export const NOT_EXECUTED: ReadonlySet<string> = new Set([
  RpcErrorCode.NoInstance,
  RpcErrorCode.NotLeader,
  RpcErrorCode.NotOwner,
]);
/** Failures of a key-routed attempt that the route hook is told about on the retry. */
export const REROUTE: ReadonlySet<string> = new Set([RpcErrorCode.NoInstance, RpcErrorCode.NotOwner]);
/** Errors after which the handler may have run: retried only for idempotent calls. */
export const MAYBE_EXECUTED: ReadonlySet<string> = new Set([
  RpcErrorCode.Timeout,
  RpcErrorCode.Fenced,
  'GC_CLOSED',
]);
/**
 * Errors that count as failures of the target for its circuit breaker: the ones that cost the caller
 * time or show a broken target. "No responders" does not count: NATS already fails it fast, and during a
 * leader failover it is expected until the new leader subscribes (the retries bridge that gap).
 */
export const BREAKER_FAILURES: ReadonlySet<string> = new Set([
  RpcErrorCode.Timeout,
  RpcErrorCode.HandlerError,
  RpcErrorCode.Protocol,
]);

/** The `code` of an error, or the empty string. */
export const codeOf = (err: unknown): string => {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' ? c : '';
};

/** The value of the `gc_rpc_circuit_state` gauge per circuit state. */
export const STATE_VALUES: Record<CircuitStateName, number> = {
  closed: 0,
  open: 1,
  'half-open': 2,
  isolated: 3,
};

/** A client's retry policies (per retry count and idempotency) and circuit breakers (per app and target). */
export class CallPolicies {
  readonly #o: RpcClientOptions;
  readonly #metrics: RpcMetrics | undefined;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #retries = new Map<string, RetryPolicy>();

  constructor(o: RpcClientOptions, metrics: RpcMetrics | undefined, log: Logger) {
    this.#o = o;
    this.#metrics = metrics;
    this.#log = log;
    this.#clock = o.clock ?? realClock;
  }

  /** Circuit state per `app/target`. */
  circuits(): Record<string, CircuitStateName> {
    const out: Record<string, CircuitStateName> = {};
    for (const [k, b] of this.#breakers) out[k] = b.state;
    return out;
  }

  /** The retry policy for `retries` retries: calls that may have run are retried only when `idempotent`. */
  retry(retries: number, idempotent: boolean): RetryPolicy {
    const k = `${retries}|${idempotent}`;
    let p = this.#retries.get(k);
    if (!p) {
      p = retry(
        handleWhen((err) => {
          const c = codeOf(err);
          return NOT_EXECUTED.has(c) || (idempotent && MAYBE_EXECUTED.has(c));
        }),
        {
          maxAttempts: retries,
          backoff: new ExponentialBackoff({
            initialDelay: this.#o.retry.initialDelayMs,
            maxDelay: this.#o.retry.maxDelayMs,
          }),
        },
      );
      this.#retries.set(k, p);
    }
    return p;
  }

  /** The circuit breaker of `app`'s `target` (made on first use, its state reported as a metric). */
  breaker(app: string, target: string): CircuitBreaker {
    const k = `${app}/${target}`;
    let b = this.#breakers.get(k);
    if (!b) {
      const gauge = this.#metrics?.circuitState.labels(app, target);
      b = new CircuitBreaker({
        consecutiveFailures: this.#o.circuit.consecutiveFailures,
        halfOpenAfterMs: this.#o.circuit.halfOpenAfterMs,
        clock: this.#clock,
        isFailure: (err) => BREAKER_FAILURES.has(codeOf(err)),
        onStateChange: (state) => {
          gauge?.set(STATE_VALUES[state]);
          this.#log.info('circuit state changed', { app, target, state });
        },
      });
      gauge?.set(STATE_VALUES.closed);
      this.#breakers.set(k, b);
    }
    return b;
  }
}

/** 32-bit FNV-1a, then a murmur3 finalizer: a fast, well-spread, deterministic string hash. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Rendezvous (highest-random-weight) hashing: the node with the highest hash of `node + key` owns the
 * key. Deterministic for a given set of nodes, and only the keys of a node that leaves move.
 */
export function rendezvous(nodes: readonly string[], key: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const n of nodes) {
    const score = hash32(`${n}\u0000${key}`);
    if (score > bestScore || (score === bestScore && best !== undefined && n < best)) {
      best = n;
      bestScore = score;
    }
  }
  return best;
}

/** Bytes the headers take on the wire. */
export function headerBytes(h: Map<string, string>): number {
  let n = 12; // "NATS/1.0\r\n" + final "\r\n"
  for (const [k, v] of h) n += k.length + v.length + 4;
  return n;
}
