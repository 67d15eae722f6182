// Plan before doing: what the scheduler would decide if an operation were applied now — which apps move
// where, which instances stop, which switchovers would wait for a standby that is not caught up, what a
// budget or a maintenance window holds back — without writing anything (`gc … --dry-run`, like
// `nomad job plan`).
import { plan as diff, type PlacementChange } from '@gc/placement';
import { decide, type DecideInput } from './decide.js';
import type { LabelChanges } from './labels.js';
import type { AppMove, AppRebalance, NodeAdmin, NodeDeclaration, PlacementState } from './records.js';

/** An operation to plan (see {@link PlacementControl.plan}). */
export type PlacementOperation =
  | { op: 'drain'; node: string; deadlineMs?: number }
  | { op: 'cordon'; node: string }
  | { op: 'uncordon'; node: string }
  | { op: 'label'; node: string; changes: LabelChanges }
  | { op: 'move'; app: string; to: string }
  | { op: 'rebalance'; app: string }
  /** What the scheduler would decide now, with nothing changed. */
  | { op: 'none' };

/** One app's disruption in a plan. */
export interface PlannedDisruption {
  app: string;
  /** Nodes where an instance (or the leader, or a standby) would stop. */
  stops: string[];
  /**
   * Active-passive: the lead would move from → to. `standbyReady` false means the standby on `to` is not
   * caught up (or not contending): the switchover waits for it, and a forced one serves only after its
   * replica has caught up — that lag is the data at risk should the old leader die meanwhile.
   */
  switchover?: { from?: string; to?: string; standbyReady: boolean };
}

/** What an operation would do, as {@link planOperation} tells it. */
export interface OperationPlan {
  operation: PlacementOperation;
  /** The last decision's generation the plan starts from (0: none yet). */
  generation: number;
  /** Placement changes against the last decision, with why (one line per node). */
  changes: PlacementChange[];
  disruption: PlannedDisruption[];
  /** Apps whose automatic migration would wait, with why. */
  deferred: Record<string, string>;
  /** What would hold a drain back (a budget, no other node). */
  blocked: string[];
  /** Apps no node set would satisfy, with why. */
  unsatisfiable: Record<string, string>;
}

/** What {@link planOperation} works from: the scheduler's inputs, read now. */
export type PlanInput = Omit<DecideInput, 'previous'> & { previous: PlacementState | undefined };

/** Applies `operation` to the scheduler's inputs and decides, writing nothing. Pure. */
export function planOperation(input: PlanInput, operation: PlacementOperation, by: string): OperationPlan {
  const admins = new Map<string, NodeAdmin>(input.admins);
  const moves = new Map<string, AppMove>(input.moves ?? []);
  const rebalances = new Map<string, AppRebalance>(input.rebalances ?? []);
  let members = input.members;
  const at = input.now;
  switch (operation.op) {
    case 'drain': {
      if (admins.get(operation.node)?.drain) break; // drained already: its deadline runs as it is
      const deadlineMs = operation.deadlineMs ?? 3_600_000;
      const reason = 'planned drain';
      admins.set(operation.node, {
        cordoned: true,
        drain: { since: at, deadlineMs, reason },
        reason,
        by,
        at,
      });
      break;
    }
    case 'cordon':
      admins.set(operation.node, { cordoned: true, reason: 'planned cordon', by, at });
      break;
    case 'uncordon':
      admins.delete(operation.node);
      break;
    case 'label':
      members = members.map((m) => {
        if (m.nodeId !== operation.node) return m;
        const labels: Record<string, string> = { ...m.labels };
        for (const [k, v] of Object.entries(operation.changes))
          if (v === null) delete labels[k];
          else labels[k] = v;
        return { nodeId: m.nodeId, labels };
      });
      break;
    case 'move':
      moves.set(operation.app, { to: operation.to, reason: 'planned move', by, at });
      break;
    case 'rebalance':
      rebalances.set(operation.app, { reason: 'planned rebalance', by, at });
      break;
    case 'none':
      break;
  }
  // With the limits the scheduler decided with (its node's `migrations`), not this process's defaults.
  const limits = input.limits ?? input.previous?.limits;
  const decision = decide({ ...input, members, admins, moves, rebalances, ...(limits ? { limits } : {}) });
  const changes = diff(input.previous?.placements ?? {}, decision.schedule).changes;
  return {
    operation,
    generation: input.previous?.generation ?? 0,
    changes,
    disruption: changes.flatMap((c) => disruptionOf(c, input.declarations)),
    deferred: decision.deferred,
    blocked: Object.entries(decision.draining).flatMap(([node, d]) => d.blocked.map((b) => `${node}: ${b}`)),
    unsatisfiable: Object.fromEntries(Object.entries(decision.unsatisfiable).map(([a, u]) => [a, u.message])),
  };
}

function disruptionOf(
  c: PlacementChange,
  declarations: ReadonlyMap<string, NodeDeclaration>,
): PlannedDisruption[] {
  const stops = c.from;
  if (!stops.length && !c.leader) return [];
  const to = c.leader?.to;
  return [
    {
      app: c.app,
      stops: [...stops],
      ...(c.leader
        ? {
            switchover: {
              ...(c.leader.from !== undefined ? { from: c.leader.from } : {}),
              ...(to !== undefined ? { to } : {}),
              standbyReady:
                to !== undefined &&
                (declarations.get(to)?.ready?.includes(c.app) === true ||
                  declarations.get(to)?.active?.includes(c.app) === true),
            },
          }
        : {}),
    },
  ];
}
