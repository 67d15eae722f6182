import { Counter, Gauge, type Registry } from 'prom-client';

/** The metrics of one membership (no-ops without a registry). */
export interface MembershipMetrics {
  members(n: number): void;
  event(type: 'join' | 'leave' | 'update'): void;
  heartbeatFailed(): void;
}

const noop: MembershipMetrics = {
  members: () => undefined,
  event: () => undefined,
  heartbeatFailed: () => undefined,
};

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Metrics on `registry`:
 * - `gc_membership_members{bucket,node}`: live members this node sees;
 * - `gc_membership_events_total{bucket,node,type}`: join/leave/update events seen;
 * - `gc_membership_heartbeat_failures_total{bucket,node}`: heartbeats that failed to write.
 */
export function membershipMetrics(
  registry: Registry | undefined,
  labels: { bucket: string; node: string },
): MembershipMetrics {
  if (!registry) return noop;
  const members = getOrCreate(
    registry,
    'gc_membership_members',
    () =>
      new Gauge({
        name: 'gc_membership_members',
        help: 'Live members seen by this node',
        labelNames: ['bucket', 'node'],
        registers: [registry],
      }),
  );
  const events = getOrCreate(
    registry,
    'gc_membership_events_total',
    () =>
      new Counter({
        name: 'gc_membership_events_total',
        help: 'Membership events seen by this node',
        labelNames: ['bucket', 'node', 'type'],
        registers: [registry],
      }),
  );
  const failed = getOrCreate(
    registry,
    'gc_membership_heartbeat_failures_total',
    () =>
      new Counter({
        name: 'gc_membership_heartbeat_failures_total',
        help: 'Heartbeats of this node that failed to write',
        labelNames: ['bucket', 'node'],
        registers: [registry],
      }),
  );
  return {
    members: (n) => members.set(labels, n),
    event: (type) => events.inc({ ...labels, type }),
    heartbeatFailed: () => failed.inc(labels),
  };
}
