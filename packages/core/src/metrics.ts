// Prometheus metrics that every instance of a kind in the process shares, told apart by labels.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The metric already registered as `name` in `registry`, else the one `make` creates (which must
 * register it there). Lets several instances of a component share one metric, as a registry takes
 * each name once.
 *
 * @example
 * const g = getOrCreateMetric(registry, 'gc_x', () => new Gauge({ name: 'gc_x', help: 'X', registers: [registry] }));
 */
export function getOrCreateMetric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * The counter `name` of `registry`, created with `help` and `labelNames` the first time.
 *
 * @example
 * sharedCounter(registry, 'gc_locks_lost_total', 'Lock leases lost while held', ['bucket', 'owner']).inc(labels);
 */
export function sharedCounter(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  return getOrCreateMetric(
    registry,
    name,
    () => new Counter({ name, help, labelNames, registers: [registry] }),
  );
}

/** The gauge `name` of `registry`, created with `help` and `labelNames` the first time. */
export function sharedGauge(registry: Registry, name: string, help: string, labelNames: string[]): Gauge {
  return getOrCreateMetric(
    registry,
    name,
    () => new Gauge({ name, help, labelNames, registers: [registry] }),
  );
}

/** The histogram `name` of `registry`, created with `help`, `labelNames` and `buckets` (upper bounds, in seconds for durations) the first time. */
export function sharedHistogram(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  buckets: number[],
): Histogram {
  return getOrCreateMetric(
    registry,
    name,
    () => new Histogram({ name, help, labelNames, buckets, registers: [registry] }),
  );
}
