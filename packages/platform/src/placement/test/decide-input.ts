// The decide() tests' inputs: nodes (labels, declared apps, what is active, refusals) and the scheduler's
// other inputs, and a decision turned into the state record the next decision reads.
import type { DecideInput, Decision } from '../decide.js';
import type { NodeAdmin, NodeDeclaration, PlacementState } from '../records.js';

/** One node as the tests describe it. */
export interface TestNode {
  labels?: Record<string, string>;
  apps: NodeDeclaration['apps'];
  active?: string[];
  refused?: Record<string, string>;
}

/** A {@link DecideInput} from `nodes` (all live members); `admins` as a record or a map; `now` default 1000. */
export function decideInput(
  nodes: Record<string, TestNode>,
  o: Partial<Omit<DecideInput, 'admins'>> & {
    admins?: Record<string, NodeAdmin> | ReadonlyMap<string, NodeAdmin>;
  } = {},
): DecideInput {
  const { admins, ...rest } = o;
  return {
    members: Object.entries(nodes).map(([id, n]) => ({ nodeId: id, labels: n.labels ?? {} })),
    declarations: new Map<string, NodeDeclaration>(
      Object.entries(nodes).map(([id, n]) => [
        id,
        {
          nodeId: id,
          apps: n.apps,
          ...(n.active ? { active: n.active } : {}),
          ...(n.refused ? { refused: n.refused } : {}),
          at: 0,
        },
      ]),
    ),
    admins: admins instanceof Map ? admins : new Map(Object.entries(admins ?? {})),
    previous: undefined,
    now: 1000,
    ...rest,
  };
}

/** `d` as the state record a scheduler writes (generation as given). */
export function asState(d: Decision, generation = 1): PlacementState {
  return {
    scheduler: 'x',
    epoch: 1,
    at: 0,
    generation,
    placements: d.placements,
    reasons: d.reasons,
    unsatisfiable: d.unsatisfiable,
    nodes: d.nodes,
    draining: d.draining,
    leaders: d.leaders,
    deferred: d.deferred,
    migrated: d.migrated,
    refused: d.refused,
  };
}

/** An operator's drain of a node requested at `at` (its own clock), with `deadlineMs` to empty it. */
export function drainAdmin(at: number, deadlineMs: number, reason: string, by = 'op'): NodeAdmin {
  return { cordoned: true, drain: { since: at, deadlineMs, reason }, reason, by, at };
}
