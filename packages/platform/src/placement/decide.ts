// One scheduling decision, from what the bucket and the membership say: pure, so that it is tested without
// NATS. The scheduler (scheduler.ts) gathers the inputs, calls decide() and writes the result.
import {
  planDrain,
  schedule,
  type AppPlacement,
  type PlacementApp,
  type NodeReason,
  type PlacementNode,
  type ScheduleResult,
} from '@gc/placement';
import { DEFAULT_MIGRATION_LIMITS, gateMigrations, migrating, type MigrationLimits } from './gate.js';
import type {
  AppMove,
  AppRebalance,
  DeclaredApp,
  NodeAdmin,
  NodeDeclaration,
  PlacementState,
} from './records.js';

/** What {@link decide} works from. */
export interface DecideInput {
  /** Live members: node id and labels. */
  members: ReadonlyArray<{ nodeId: string; labels: Readonly<Record<string, string>> }>;
  declarations: ReadonlyMap<string, NodeDeclaration>;
  admins: ReadonlyMap<string, NodeAdmin>;
  /** Operators' moves of active-passive apps (default none). */
  moves?: ReadonlyMap<string, AppMove>;
  /** Operators' rebalances: these apps are placed afresh, ignoring where they run (default none). */
  rebalances?: ReadonlyMap<string, AppRebalance>;
  /** Cooldown and concurrency of automatic migrations (default {@link DEFAULT_MIGRATION_LIMITS}). */
  limits?: MigrationLimits;
  previous: PlacementState | undefined;
  /** Wall-clock ms now (drain deadlines). */
  now: number;
}

/** A decision, without the scheduler's identity (epoch, generation) that writing it adds. */
export type Decision = Pick<
  PlacementState,
  'placements' | 'reasons' | 'unsatisfiable' | 'nodes' | 'draining' | 'leaders'
> &
  Required<Pick<PlacementState, 'deferred' | 'migrated' | 'refused'>> & {
    /** Rebalances this decision applied (the scheduler deletes their records once it is written). */
    rebalanced: string[];
    /** Wall-clock ms at which a deferred migration may go: the scheduler decides again then. */
    wakeAt?: number;
    /** Migrations the decision starts (see `gateMigrations`). */
    started: Array<{ app: string; cause: 'operator' | 'automatic' }>;
    /** Apps declared with different specs on different nodes: the first node's (by id) is used. */
    conflicts: string[];
    /** The schedule the decision ends with (for `plan()` against the last one). */
    schedule: ScheduleResult;
  };

const sameSpec = (a: DeclaredApp, b: DeclaredApp) =>
  JSON.stringify([a.mode, a.placement, a.budget ?? null, a.migrate ?? null]) ===
  JSON.stringify([b.mode, b.placement, b.budget ?? null, b.migrate ?? null]);

/**
 * Where every declared app runs: on the live nodes that declare it, by its constraints, keeping apps (and
 * active-passive leaders where they actually lead) in place unless a constraint or a clearly better score
 * says otherwise; cordoned nodes take no new apps; drained nodes lose their apps as far as the apps'
 * disruption budgets allow, and all of them once the drain's deadline has passed.
 */
export function decide(input: DecideInput): Decision {
  const live = new Set(input.members.map((m) => m.nodeId));
  const declared = new Map<string, { spec: DeclaredApp; on: string[] }>();
  const conflicts = new Set<string>();
  for (const node of [...input.declarations.keys()].sort()) {
    if (!live.has(node)) continue;
    for (const [app, spec] of Object.entries(input.declarations.get(node)!.apps)) {
      const d = declared.get(app);
      if (!d) declared.set(app, { spec, on: [node] });
      else {
        d.on.push(node);
        if (!sameSpec(d.spec, spec)) conflicts.add(app);
      }
    }
  }
  const nodes: PlacementNode[] = input.members.map((m) => {
    const inv = input.declarations.get(m.nodeId)?.inventory;
    return {
      nodeId: m.nodeId,
      labels: m.labels,
      cordoned: input.admins.get(m.nodeId)?.cordoned === true,
      ...(inv ? { inventory: inv } : {}),
    };
  });
  const unreadable: Record<string, { constraint: string; message: string }> = {};
  const apps: PlacementApp[] = [];
  for (const [app, { spec, on }] of declared) {
    // Only nodes that declare the app can run it: that is an implicit onNodes.
    const onNodes = spec.placement.onNodes ? on.filter((n) => spec.placement.onNodes!.includes(n)) : on;
    const a: PlacementApp = {
      app,
      mode: spec.mode,
      placement: { ...spec.placement, onNodes },
      ...(spec.budget ? { budget: spec.budget } : {}),
    };
    // One app's spec this scheduler cannot read (written by a newer gc, or by hand) must not stop the others.
    try {
      schedule({ nodes: [], apps: [a] });
      apps.push(a);
    } catch (err) {
      unreadable[app] = {
        constraint: 'spec',
        message: `app "${app}": its placement spec (declared by ${on.join(', ')}) cannot be used: ${(err as Error).message}`,
      };
    }
  }
  // What runs where now: the last decision, with each active-passive app's leader where it really leads.
  const current: Record<string, AppPlacement> = {};
  const leaders: Record<string, string> = {};
  for (const [app, { spec }] of declared) {
    if (spec.mode !== 'active-passive') continue;
    const at = [...live].sort().find((n) => input.declarations.get(n)?.active?.includes(app));
    if (at !== undefined) leaders[app] = at;
  }
  for (const [app, p] of Object.entries(input.previous?.placements ?? {})) {
    if (!declared.has(app)) continue;
    const actual = p.nodes.find((n) => live.has(n) && input.declarations.get(n)?.active?.includes(app));
    // Where the lead is going while a migration of it is under way (the old leader has not handed over yet:
    // keeping it would undo the move); otherwise where it really is (after a failover, the lead stays).
    const moving =
      p.leader !== undefined &&
      live.has(p.leader) &&
      input.declarations.get(p.leader)?.apps[app] !== undefined &&
      migrating(input.previous, app, input.now);
    const leader =
      declared.get(app)!.spec.mode === 'active-passive'
        ? moving
          ? p.leader
          : (actual ?? p.leader)
        : undefined;
    current[app] = { nodes: p.nodes, ...(leader !== undefined ? { leader } : {}) };
  }
  // A move makes its target the preferred leader (the schedule keeps a current leader that is still placed).
  for (const [app, mv] of input.moves ?? []) {
    const c = current[app];
    if (c && declared.get(app)?.spec.mode === 'active-passive' && c.nodes.includes(mv.to))
      current[app] = { ...c, leader: mv.to };
  }
  // A rebalance places the app afresh: the schedule does not see where it runs (the gate below does). An
  // app the last decision did not place (a scheduler's first decision, an app placement just reached) is
  // kept where it runs now: placing it must not cost a switchover or a restart for nothing.
  const sticky: Record<string, AppPlacement> = { ...current };
  for (const [app, { spec }] of declared) {
    if (sticky[app]) continue;
    const running = [...live].sort().filter((n) => input.declarations.get(n)?.active?.includes(app));
    if (!running.length) continue;
    sticky[app] =
      spec.mode === 'active-passive'
        ? { nodes: running, leader: leaders[app] ?? running[0]! }
        : { nodes: running };
  }
  for (const app of input.rebalances?.keys() ?? []) delete sticky[app];
  let result: ScheduleResult = schedule({ nodes, apps, current: sticky });
  const draining: Decision['draining'] = {};
  for (const [node, admin] of [...input.admins].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!admin.drain || !live.has(node)) continue;
    // The deadline runs from when a scheduler first saw the drain, on the schedulers' clock (not the clock of
    // the machine the command ran on): `requested` tells a new drain of the node from the same one.
    const before = input.previous?.draining[node];
    const since =
      before?.requested === admin.drain.since && before.since !== undefined ? before.since : input.now;
    const stamp = { since, requested: admin.drain.since };
    const forced = input.now >= since + admin.drain.deadlineMs;
    if (forced) {
      result = schedule({ nodes: nodes.filter((n) => n.nodeId !== node), apps, current: result.placements });
      draining[node] = { remaining: [], blocked: [], forced: true, ...stamp };
      continue;
    }
    const unavailable: Record<string, string[]> = {};
    for (const a of apps) {
      const on = result.placements[a.app]?.nodes ?? [];
      unavailable[a.app] = on.filter((n) => !input.declarations.get(n)?.active?.includes(a.app));
    }
    const plan = planDrain(node, { nodes, apps, current: result.placements, unavailable });
    result = plan.next;
    // A replacement starts before the instance here stops: the node keeps the app until the new node
    // declares it active (the next decision after that lets it go).
    for (const step of plan.steps) {
      if (step.action !== 'replace' || step.to === undefined) continue;
      if (input.declarations.get(step.to)?.active?.includes(step.app)) continue;
      const p = result.placements[step.app];
      if (p && !p.nodes.includes(node))
        result = {
          ...result,
          placements: { ...result.placements, [step.app]: { ...p, nodes: [...p.nodes, node].sort() } },
        };
    }
    draining[node] = {
      remaining: Object.keys(result.placements)
        .filter((a) => result.placements[a]!.nodes.includes(node))
        .sort(),
      blocked: plan.blocked.map((b) => b.message),
      forced: false,
      ...stamp,
    };
  }
  const gate = gateMigrations({
    previous: Object.fromEntries(
      Object.entries(input.previous?.placements ?? {}).filter(([app]) => declared.has(app)),
    ),
    next: result.placements,
    apps: new Map(
      [...declared].map(([app, d]) => [
        app,
        {
          mode: d.spec.mode,
          ...(d.spec.migrate ? { migrate: d.spec.migrate } : {}),
          ...(typeof d.spec.placement.maxNodes === 'number' ? { maxNodes: d.spec.placement.maxNodes } : {}),
        },
      ]),
    ),
    live,
    declarations: input.declarations,
    admins: input.admins,
    moved: new Set(input.moves?.keys() ?? []),
    rebalanced: new Set(input.rebalances?.keys() ?? []),
    migrated: input.previous?.migrated ?? {},
    leaders,
    limits: input.limits ?? DEFAULT_MIGRATION_LIMITS,
    now: input.now,
  });
  result = { ...result, placements: gate.placements };
  // Where an onMigrationStart hook keeps an app, by app: "node: reason".
  const refused: Record<string, string> = {};
  for (const node of [...live].sort())
    for (const [app, why] of Object.entries(input.declarations.get(node)?.refused ?? {}))
      refused[app] = refused[app] ? `${refused[app]}; ${node}: ${why}` : `${node}: ${why}`;
  const reasons: Record<string, Record<string, NodeReason>> = {};
  for (const [app, byNode] of Object.entries(result.reasons)) {
    const on = declared.get(app)?.on ?? [];
    reasons[app] = {};
    for (const [node, r] of Object.entries(byNode)) {
      // The implicit onNodes reads better as what it is.
      reasons[app][node] =
        r.status === 'excluded' && r.constraint === 'onNodes' && !on.includes(node)
          ? { ...r, detail: 'the app is not declared on this node' }
          : { ...r };
    }
  }
  const unsatisfiable: Decision['unsatisfiable'] = { ...unreadable };
  for (const [app, u] of Object.entries(result.unsatisfiable))
    unsatisfiable[app] = { constraint: u.constraint, message: u.message };
  return {
    placements: result.placements,
    reasons,
    unsatisfiable,
    nodes: [...live].sort(),
    leaders,
    draining,
    deferred: gate.deferred,
    migrated: gate.migrated,
    refused,
    rebalanced: gate.rebalancedNow,
    started: gate.started,
    ...(gate.wakeAt !== undefined ? { wakeAt: gate.wakeAt } : {}),
    conflicts: [...conflicts].sort(),
    schedule: { ...result, reasons: reasons },
  };
}

/** True when two decisions place every app the same way (leaders included) and report the same drains. */
export function sameDecision(a: Decision | PlacementState | undefined, b: Decision): boolean {
  if (!a) return false;
  const key = (d: Decision | PlacementState) =>
    JSON.stringify([
      sorted(d.placements),
      sorted(d.unsatisfiable),
      sorted(d.draining),
      d.nodes,
      sorted(d.leaders ?? {}),
      sorted(d.deferred ?? {}),
      sorted(d.refused ?? {}),
      // Each node's verdict (not its score, which moves with the load): `gc explain` must not keep one that
      // changed (a node that declared the app after the decision was made).
      sorted(d.reasons).map(([app, byNode]) => [
        app,
        sorted(byNode).map(([node, r]) => [node, r.status, (r as { constraint?: string }).constraint ?? '']),
      ]),
    ]);
  return key(a) === key(b);
}

function sorted<T>(o: Record<string, T>): Array<[string, T]> {
  return Object.entries(o).sort(([x], [y]) => (x < y ? -1 : 1));
}
