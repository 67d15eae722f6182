import type { PlatformStatus, ReplicationStatus } from '@gc/platform';

/** `gc status --json` shape. */
export interface StatusJson {
  platform: string;
  nodes: Array<{ id: string; labels: Record<string, string>; health: string; server: string | undefined }>;
  apps: Array<{
    name: string;
    mode: string;
    leader: string | null;
    epoch: number;
    roles: Record<string, string>;
    /** Backend state per node, when the app has a backend. */
    backend?: Record<string, string>;
    /** SQLite replication per node, when the app has a database. */
    replication?: Record<string, ReplicationStatus>;
    /** Apps with placement: per node, whether it is placed there and why. */
    placement?: Record<string, { placed: boolean; reason: string }>;
  }>;
}

/** Folds every node's status into one view: nodes, and per app its leader, epoch and the role on each node. */
export function summarize(platform: string, nodes: PlatformStatus[]): StatusJson {
  const apps = new Map<string, StatusJson['apps'][number]>();
  for (const n of nodes) {
    for (const a of n.apps) {
      const entry = apps.get(a.name) ?? { name: a.name, mode: a.mode, leader: null, epoch: 0, roles: {} };
      entry.roles[n.nodeId] = a.role;
      if (a.backend) entry.backend = { ...entry.backend, [n.nodeId]: a.backend.state };
      if (a.replication) entry.replication = { ...entry.replication, [n.nodeId]: a.replication };
      if (a.placement)
        entry.placement = {
          ...entry.placement,
          [n.nodeId]: { placed: a.placement.placed, reason: a.placement.reason },
        };
      if (a.epoch >= entry.epoch && a.leader) {
        entry.leader = a.leader;
        entry.epoch = a.epoch;
      }
      apps.set(a.name, entry);
    }
  }
  return {
    platform,
    nodes: nodes.map((n) => ({
      id: n.nodeId,
      labels: n.labels,
      health: n.health.state,
      server: n.server.version,
    })),
    apps: [...apps.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/** A node's replication state that needs an operator (the same rule as the node's health check). */
export function isBroken(x: { state: string; role: string; reason?: string }): boolean {
  return (
    x.state === 'stalled' ||
    x.state === 'refused' ||
    x.state === 'publish-failing' ||
    (x.role === 'replica' && x.reason !== undefined)
  );
}
