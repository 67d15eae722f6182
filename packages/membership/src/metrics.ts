import { sharedCounter, sharedGauge } from '@gc/core';
import type { Registry } from 'prom-client';

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
  const members = sharedGauge(registry, 'gc_membership_members', 'Live members seen by this node', [
    'bucket',
    'node',
  ]);
  const events = sharedCounter(
    registry,
    'gc_membership_events_total',
    'Membership events seen by this node',
    ['bucket', 'node', 'type'],
  );
  const failed = sharedCounter(
    registry,
    'gc_membership_heartbeat_failures_total',
    'Heartbeats of this node that failed to write',
    ['bucket', 'node'],
  );
  return {
    members: (n) => members.set(labels, n),
    event: (type) => events.inc({ ...labels, type }),
    heartbeatFailed: () => failed.inc(labels),
  };
}
