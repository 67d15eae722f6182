import { ConfigError } from '@gc/core';
import { UnknownNodeError } from './errors.js';
import { cmp, compileApps } from './options.js';
import { schedule } from './schedule.js';
import {
  AppMode,
  type AppPlacement,
  type DisruptionBudget,
  type DrainBlock,
  type DrainInput,
  type DrainPlan,
  type DrainStep,
  type NodeReason,
  type PlacementChange,
  type PlacementMap,
  type PlacementPlan,
  type ScheduleResult,
} from './types.js';

const fmt = (n: number) => String(Math.round(n * 10) / 10);

function explainNode(node: string, r: NodeReason | undefined, leaving: boolean): string {
  if (!r) return leaving ? `${node}: no longer considered` : `${node}: chosen`;
  if (r.status === 'excluded') return `${node}: excluded by ${r.constraint} (${r.detail})`;
  const s = `score ${fmt(r.score.total)} (affinity ${fmt(r.score.affinity)}, load ${fmt(r.score.load)}, inventory ${fmt(r.score.inventory)}, sticky ${fmt(r.score.sticky)})`;
  if (r.status === 'not-selected') return `${node}: passed over, ${r.detail}; ${s}`;
  return `${node}: ${r.role}, ${s}`;
}

/**
 * What changes between the placement in force and a new schedule: per app, the nodes it leaves and
 * the nodes it starts on, the preferred-leader change, and why (from the schedule's recorded reasons).
 *
 * @example
 * ```ts
 * const next = schedule({ nodes, apps, current });
 * for (const c of plan(current, next).changes) console.log(c.app, c.from, '→', c.to, c.reasons);
 * ```
 */
export function plan(current: PlacementMap, next: ScheduleResult): PlacementPlan {
  const apps = [
    ...new Set([
      ...Object.keys(current),
      ...Object.keys(next.placements),
      ...Object.keys(next.unsatisfiable),
    ]),
  ].sort(cmp);
  const changes: PlacementChange[] = [];
  const unchanged: string[] = [];
  for (const app of apps) {
    const before = current[app];
    const after = next.placements[app];
    const b = new Set(before?.nodes ?? []);
    const n = new Set(after?.nodes ?? []);
    const from = [...b].filter((x) => !n.has(x)).sort(cmp);
    const to = [...n].filter((x) => !b.has(x)).sort(cmp);
    const leaderChanged = (before?.leader ?? undefined) !== (after?.leader ?? undefined);
    if (!from.length && !to.length && !leaderChanged) {
      if (b.size || n.size) unchanged.push(app);
      continue;
    }
    const why = next.reasons[app] ?? {};
    const reasons: string[] = [];
    const unsat = next.unsatisfiable[app];
    if (unsat) reasons.push(unsat.message);
    else if (!after) reasons.push(`app "${app}" is no longer defined`);
    for (const x of from) reasons.push(explainNode(x, why[x], true));
    for (const x of to) reasons.push(explainNode(x, why[x], false));
    const change: PlacementChange = {
      app,
      kind: !b.size
        ? 'place'
        : !n.size
          ? 'remove'
          : from.length && to.length
            ? 'move'
            : to.length
              ? 'grow'
              : from.length
                ? 'shrink'
                : 'leader',
      from,
      to,
      reasons,
    };
    if (leaderChanged && (before?.leader !== undefined || after?.leader !== undefined)) {
      change.leader = {};
      if (before?.leader !== undefined) change.leader.from = before.leader;
      if (after?.leader !== undefined) change.leader.to = after.leader;
      if (change.kind === 'leader')
        reasons.push(
          `leader ${before?.leader ?? 'none'} → ${after?.leader ?? 'none'}: ${explainNode(after?.leader ?? '', why[after?.leader ?? ''], false)}`,
        );
    }
    changes.push(change);
  }
  return { changes, unchanged };
}

/** Resolves a budget value (count or percentage of `total`, rounded up) to a count. */
export function budgetCount(v: number | `${number}%`, total: number): number {
  return typeof v === 'number' ? v : Math.ceil((parseFloat(v) / 100) * total);
}

/** Whether disrupting one more instance of an app keeps its budget, and if not, the rule it breaks. */
function budgetAllows(
  budget: DisruptionBudget | undefined,
  total: number,
  availableBefore: number,
  availableDuring: number,
): string | undefined {
  if (!budget) return undefined;
  if (budget.minAvailable !== undefined) {
    const min = budgetCount(budget.minAvailable, total);
    if (availableDuring < min) return `minAvailable ${String(budget.minAvailable)} (= ${min})`;
  }
  if (budget.maxUnavailable !== undefined) {
    const max = budgetCount(budget.maxUnavailable, total);
    if (total - availableDuring > max && total - availableDuring > total - availableBefore)
      return `maxUnavailable ${String(budget.maxUnavailable)} (= ${max})`;
  }
  return undefined;
}

/**
 * Plans moving every app off `node`: schedules with the node excluded (constraint `draining`), then for
 * each app that runs there, one step — a `replace` (start the replacement, wait until it is ready, then
 * stop here: no loss of availability), a `switchover` (active-passive leader) or a `stop` (no replacement)
 * — checked against the app's disruption budget. Steps that the budget forbids, and apps that no other
 * node may run, are reported in `blocked` with what would unblock them; they keep their current
 * placement in `next`. Throws {@link UnknownNodeError} when `node` is not in the inventory.
 *
 * @example
 * ```ts
 * const drain = planDrain('n3', { nodes, apps, current });
 * for (const wave of drain.waves) console.log('move', wave);
 * for (const b of drain.blocked) console.log('blocked:', b.message);
 * ```
 */
export function planDrain(node: string, input: DrainInput): DrainPlan {
  const ids = input.nodes.map((n) => n.nodeId).sort(cmp);
  if (!ids.includes(node)) throw new UnknownNodeError(node, ids);
  const maxParallel = input.maxParallel ?? 1;
  if (!Number.isInteger(maxParallel) || maxParallel < 1)
    throw new ConfigError('drain.maxParallel', `must be an integer ≥ 1, got ${JSON.stringify(maxParallel)}`);
  const current = input.current ?? {};
  const next = schedule(input, { draining: new Set([node]) });
  const apps = compileApps(input.apps);
  const known = new Set(ids);

  const steps: DrainStep[] = [];
  const blocked: DrainBlock[] = [];
  const placements: Record<string, AppPlacement> = { ...next.placements };
  for (const app of Object.keys(current).sort(cmp)) {
    const cur = current[app]!;
    const a = apps.get(app);
    if (!a || !cur.nodes.includes(node)) continue;
    const down = new Set(input.unavailable?.[app] ?? []);
    const up = (x: string) => known.has(x) && !down.has(x);
    const after = next.placements[app];
    if (!after) {
      blocked.push({
        app,
        reason: 'unsatisfiable',
        message: `app "${app}" cannot leave ${node}: ${next.unsatisfiable[app]?.message ?? 'it has no placement'}. Relax its placement, add or uncordon a node that qualifies, or force the drain to stop it`,
      });
      placements[app] = cur;
      continue;
    }
    const added = after.nodes.filter((x) => !cur.nodes.includes(x));
    const hereUp = up(node);
    let step: DrainStep;
    let total: number;
    if (a.mode === AppMode.ActivePassive) {
      const isLeader = cur.leader === node || (cur.leader === undefined && cur.nodes.length === 1);
      const before = cur.leader !== undefined && up(cur.leader) ? 1 : 0;
      total = 1;
      if (isLeader) {
        step = {
          app,
          from: node,
          to: after.leader!,
          action: 'switchover',
          disruption: hereUp ? 1 : 0,
          available: { before, during: hereUp ? 0 : before },
        };
      } else {
        step = {
          app,
          from: node,
          ...(added[0] !== undefined ? { to: added[0] } : {}),
          action: added.length ? 'replace' : 'stop',
          disruption: 0,
          available: { before, during: before },
        };
      }
    } else {
      total = cur.nodes.length;
      const before = cur.nodes.filter(up).length;
      const to = added[0];
      step =
        to !== undefined
          ? { app, from: node, to, action: 'replace', disruption: 0, available: { before, during: before } }
          : {
              app,
              from: node,
              action: 'stop',
              disruption: hereUp ? 1 : 0,
              available: { before, during: hereUp ? before - 1 : before },
            };
    }
    const broken = step.disruption
      ? budgetAllows(a.budget, total, step.available.before, step.available.during)
      : undefined;
    if (broken) {
      const what =
        step.action === 'switchover'
          ? `a switchover from ${node} to ${step.to} leaves no active instance while the hand-over runs`
          : `stopping its instance on ${node} (no other node can take it) leaves ${step.available.during} of ${total} available`;
      blocked.push({
        app,
        reason: 'budget',
        message: `app "${app}" (${a.mode}) blocks the drain of ${node}: ${what}; its disruption budget ${broken} forbids that. ${
          step.action === 'switchover'
            ? 'Allow maxUnavailable: 1 (a switchover takes seconds), or let the drain deadline force it'
            : 'Wait until more instances are available, add a node that qualifies, relax the budget, or let the drain deadline force it'
        }`,
        step,
      });
      placements[app] = cur;
      continue;
    }
    steps.push(step);
  }
  const waves: string[][] = [];
  for (let i = 0; i < steps.length; i += maxParallel)
    waves.push(steps.slice(i, i + maxParallel).map((s) => s.app));
  return { node, steps, waves, blocked, complete: blocked.length === 0, next: { ...next, placements } };
}
