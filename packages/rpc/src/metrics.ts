import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The RPC metrics on one Prometheus registry. Client and server in one process share them (the
 * `side` label tells them apart). Names:
 *
 * - `gc_rpc_calls_total{side,app,method,code}` — finished calls; `code` is `OK` or the error code
 * - `gc_rpc_errors_total{side,app,method,code}` — failed calls by error code
 * - `gc_rpc_duration_seconds{side,app,method}` — latency histogram (client: whole call with retries)
 * - `gc_rpc_in_flight{side,app}` — calls or requests in flight
 * - `gc_rpc_circuit_state{app,target}` — 0 closed, 1 open, 2 half-open, 3 isolated
 */
export interface RpcMetrics {
  readonly calls: Counter<'side' | 'app' | 'method' | 'code'>;
  readonly errors: Counter<'side' | 'app' | 'method' | 'code'>;
  readonly duration: Histogram<'side' | 'app' | 'method'>;
  readonly inFlight: Gauge<'side' | 'app'>;
  readonly circuitState: Gauge<'app' | 'target'>;
}

const cache = new WeakMap<Registry, RpcMetrics>();

/** The RPC metrics registered on `registry` (created once per registry). */
export function rpcMetrics(registry: Registry): RpcMetrics {
  const hit = cache.get(registry);
  if (hit) return hit;
  const registers = [registry];
  const m: RpcMetrics = {
    calls: new Counter({
      name: 'gc_rpc_calls_total',
      help: 'RPC calls finished, by side, app, method and result code (OK or an error code)',
      labelNames: ['side', 'app', 'method', 'code'],
      registers,
    }),
    errors: new Counter({
      name: 'gc_rpc_errors_total',
      help: 'RPC calls failed, by side, app, method and error code',
      labelNames: ['side', 'app', 'method', 'code'],
      registers,
    }),
    duration: new Histogram({
      name: 'gc_rpc_duration_seconds',
      help: 'RPC latency in seconds (client: the whole call including retries; server: the handler chain)',
      labelNames: ['side', 'app', 'method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    inFlight: new Gauge({
      name: 'gc_rpc_in_flight',
      help: 'RPC calls (client) or requests (server) in flight',
      labelNames: ['side', 'app'],
      registers,
    }),
    circuitState: new Gauge({
      name: 'gc_rpc_circuit_state',
      help: 'Circuit breaker state per app and target: 0 closed, 1 open, 2 half-open, 3 isolated',
      labelNames: ['app', 'target'],
      registers,
    }),
  };
  cache.set(registry, m);
  return m;
}
