import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The metrics of one `Locks` instance (no-ops without a registry). */
export interface LockMetrics {
  held(delta: number): void;
  acquired(seconds: number, result: 'acquired' | 'timeout' | 'busy'): void;
  lost(): void;
  forced(): void;
}

const noop: LockMetrics = {
  held: () => undefined,
  acquired: () => undefined,
  lost: () => undefined,
  forced: () => undefined,
};

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Metrics on `registry`, shared by every `Locks` instance of the process and told apart by labels:
 * - `gc_locks_held{bucket,owner}`: leases held now;
 * - `gc_locks_acquire_seconds{bucket,owner,result}`: time spent in acquire (result `acquired`, `timeout`, `busy`);
 * - `gc_locks_lost_total{bucket,owner}`: leases lost (taken over or force-released while held);
 * - `gc_locks_forced_total{bucket,owner}`: force-releases made by this owner.
 */
export function lockMetrics(
  registry: Registry | undefined,
  labels: { bucket: string; owner: string },
): LockMetrics {
  if (!registry) return noop;
  const held = getOrCreate(
    registry,
    'gc_locks_held',
    () =>
      new Gauge({
        name: 'gc_locks_held',
        help: 'Lock leases held by this process',
        labelNames: ['bucket', 'owner'],
        registers: [registry],
      }),
  );
  const acquire = getOrCreate(
    registry,
    'gc_locks_acquire_seconds',
    () =>
      new Histogram({
        name: 'gc_locks_acquire_seconds',
        help: 'Time spent acquiring locks',
        labelNames: ['bucket', 'owner', 'result'],
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
        registers: [registry],
      }),
  );
  const lost = getOrCreate(
    registry,
    'gc_locks_lost_total',
    () =>
      new Counter({
        name: 'gc_locks_lost_total',
        help: 'Lock leases lost while held',
        labelNames: ['bucket', 'owner'],
        registers: [registry],
      }),
  );
  const forced = getOrCreate(
    registry,
    'gc_locks_forced_total',
    () =>
      new Counter({
        name: 'gc_locks_forced_total',
        help: 'Force-releases made by this owner',
        labelNames: ['bucket', 'owner'],
        registers: [registry],
      }),
  );
  return {
    held: (d) => held.inc(labels, d),
    acquired: (s, result) => acquire.observe({ ...labels, result }, s),
    lost: () => lost.inc(labels),
    forced: () => forced.inc(labels),
  };
}
