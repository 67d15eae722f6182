// The RPC client's policy: default options, which failures are retried or trip a circuit breaker, and
// rendezvous hashing of keys to nodes.
import { CircuitState } from 'cockatiel';
import { RpcErrorCode } from './errors.js';
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

/** cockatiel's circuit states by the names gc reports. */
export const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

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
