import { sharedCounter, sharedGauge, sharedHistogram } from '@gc/core';
import type { Registry } from 'prom-client';

/** The metrics of one ring member or router (no-ops without a registry). */
export interface RingMetrics {
  /** Partition count of the app. */
  partitions(n: number): void;
  /** Partitions this node serves. */
  owned(n: number): void;
  /** Coordinator view: partitions served per node (replaces the previous set; empty clears it). */
  nodeCounts(counts: ReadonlyMap<string, number>): void;
  handoff(phase: 'release' | 'own' | 'move', seconds: number): void;
  movesInProgress(n: number): void;
  stuckMoves(n: number): void;
  rebalance(reason: string): void;
  imbalance(ratio: number): void;
  held(n: number): void;
  holdTimeout(): void;
  leaseLost(): void;
}

const noop: RingMetrics = {
  partitions: () => undefined,
  owned: () => undefined,
  nodeCounts: () => undefined,
  handoff: () => undefined,
  movesInProgress: () => undefined,
  stuckMoves: () => undefined,
  rebalance: () => undefined,
  imbalance: () => undefined,
  held: () => undefined,
  holdTimeout: () => undefined,
  leaseLost: () => undefined,
};

/**
 * Metrics on `registry`, shared by every ring of the process and told apart by labels (`platform`, `app`,
 * and `node` = this member):
 * - `gc_ring_partitions{platform,app}`: the app's partition count;
 * - `gc_ring_owned_partitions{platform,app,node}`: partitions this node serves;
 * - `gc_ring_node_partitions{platform,app,member}`: partitions each member serves (set by the coordinator only);
 * - `gc_ring_handoff_seconds{platform,app,phase}`: `release` (drain + onRelease + write on the old owner),
 *   `own` (claim + onOwn + write on the new owner), `move` (coordinator: target set → new owner serving);
 * - `gc_ring_moves_in_progress{platform,app}`, `gc_ring_stuck_moves{platform,app}` (older than `stuckMoveMs`);
 * - `gc_ring_rebalance_total{platform,app,reason}`: coordinator decisions by reason;
 * - `gc_ring_imbalance_ratio{platform,app}`: max over members of partitions / weighted fair share;
 * - `gc_ring_held_calls{platform,app,node}`, `gc_ring_hold_timeouts_total{platform,app,node}`;
 * - `gc_ring_lease_lost_total{platform,app,node}`.
 */
export function ringMetrics(
  registry: Registry | undefined,
  labels: { platform: string; app: string; node: string },
): RingMetrics {
  if (!registry) return noop;
  const app = { platform: labels.platform, app: labels.app };
  const g = (name: string, help: string, labelNames: string[]) =>
    sharedGauge(registry, name, help, labelNames);
  const c = (name: string, help: string, labelNames: string[]) =>
    sharedCounter(registry, name, help, labelNames);
  const partitions = g('gc_ring_partitions', 'Partitions of the app', ['platform', 'app']);
  const owned = g('gc_ring_owned_partitions', 'Partitions this node serves', ['platform', 'app', 'node']);
  const nodes = g('gc_ring_node_partitions', 'Partitions each member serves (coordinator view)', [
    'platform',
    'app',
    'member',
  ]);
  const handoff = sharedHistogram(
    registry,
    'gc_ring_handoff_seconds',
    'Partition hand-off durations by phase',
    ['platform', 'app', 'phase'],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  const moves = g('gc_ring_moves_in_progress', 'Partition moves in progress', ['platform', 'app']);
  const stuck = g('gc_ring_stuck_moves', 'Partition moves older than stuckMoveMs', ['platform', 'app']);
  const rebalance = c('gc_ring_rebalance_total', 'Coordinator decisions by reason', [
    'platform',
    'app',
    'reason',
  ]);
  const imbalance = g('gc_ring_imbalance_ratio', 'Max partitions / weighted fair share over members', [
    'platform',
    'app',
  ]);
  const held = g('gc_ring_held_calls', 'Calls held for moving partitions', ['platform', 'app', 'node']);
  const holdTimeouts = c('gc_ring_hold_timeouts_total', 'Held calls that timed out', [
    'platform',
    'app',
    'node',
  ]);
  const leaseLost = c('gc_ring_lease_lost_total', 'Member leases lost', ['platform', 'app', 'node']);
  let shown = new Set<string>();
  return {
    partitions: (n) => partitions.set(app, n),
    owned: (n) => owned.set(labels, n),
    nodeCounts: (counts) => {
      const next = new Set<string>();
      for (const [member, n] of counts) {
        nodes.set({ ...app, member }, n);
        next.add(member);
      }
      for (const m of shown) if (!next.has(m)) nodes.remove({ ...app, member: m });
      shown = next;
    },
    handoff: (phase, s) => handoff.observe({ ...app, phase }, s),
    movesInProgress: (n) => moves.set(app, n),
    stuckMoves: (n) => stuck.set(app, n),
    rebalance: (reason) => rebalance.inc({ ...app, reason }),
    imbalance: (r) => imbalance.set(app, r),
    held: (n) => held.set(labels, n),
    holdTimeout: () => holdTimeouts.inc(labels),
    leaseLost: () => leaseLost.inc(labels),
  };
}
