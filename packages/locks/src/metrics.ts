import { sharedCounter, sharedGauge, sharedHistogram } from '@gc/core';
import type { Registry } from 'prom-client';

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
  const held = sharedGauge(registry, 'gc_locks_held', 'Lock leases held by this process', [
    'bucket',
    'owner',
  ]);
  const acquire = sharedHistogram(
    registry,
    'gc_locks_acquire_seconds',
    'Time spent acquiring locks',
    ['bucket', 'owner', 'result'],
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
  );
  const lost = sharedCounter(registry, 'gc_locks_lost_total', 'Lock leases lost while held', [
    'bucket',
    'owner',
  ]);
  const forced = sharedCounter(registry, 'gc_locks_forced_total', 'Force-releases made by this owner', [
    'bucket',
    'owner',
  ]);
  return {
    held: (d) => held.inc(labels, d),
    acquired: (s, result) => acquire.observe({ ...labels, result }, s),
    lost: () => lost.inc(labels),
    forced: () => forced.inc(labels),
  };
}
