// Which of a decision's migrations may start now. A migration is an app leaving a live node that still
// declares it, or an active-passive app's lead being sent to another node than the one that leads it — new
// against the last decision (a change that decision already made is in progress, not new). Operators' moves
// go through; so do drained nodes (a drain has its budgets and its deadline) and nodes that died or stopped
// declaring the app. The rest — a label or spec change, a better score, a rebalance — waits for the app's
// cooldown, its maintenance windows and a free migration slot, keeping the last decision meanwhile.
import { migrationPolicySchema, windowStatus, type AppPlacement } from '@gc/placement';
import type { NodeAdmin, NodeDeclaration } from './records.js';

/** The scheduler's defaults for {@link gateMigrations}. */
export interface MigrationLimits {
  /** Least time between two automatic migrations of one app (its `migrate.cooldownMs` wins). Default 30 s. */
  cooldownMs: number;
  /** Apps migrating at once, at most (automatic migrations wait for a slot). Default 4. */
  maxConcurrentMigrations: number;
}

export const DEFAULT_MIGRATION_LIMITS: MigrationLimits = { cooldownMs: 30_000, maxConcurrentMigrations: 4 };

/** A migration that has not converged within this long stops holding a slot. */
export const MIGRATION_SLOT_MS = 120_000;

/** What {@link gateMigrations} works from. */
export interface GateInput {
  /** The last decision's placements (what the nodes are converging to). */
  previous: Readonly<Record<string, AppPlacement>>;
  /** The new schedule. */
  next: Readonly<Record<string, AppPlacement>>;
  /** App → mode and its migration policy as declared (validated here: a bad one holds the app back). */
  apps: ReadonlyMap<string, { mode: string; migrate?: unknown; maxNodes?: number }>;
  live: ReadonlySet<string>;
  declarations: ReadonlyMap<string, NodeDeclaration>;
  admins: ReadonlyMap<string, NodeAdmin>;
  /** Apps an operator moves (explicit: not held back). */
  moved: ReadonlySet<string>;
  /** Apps an operator asked to rebalance (not held by the cooldown; windows and slots still apply). */
  rebalanced: ReadonlySet<string>;
  /** App → wall-clock ms of its last migration (the previous decision's `migrated`). */
  migrated: Readonly<Record<string, number>>;
  /** Active-passive app → the node that leads it now. */
  leaders: Readonly<Record<string, string>>;
  limits: MigrationLimits;
  now: number;
}

/** The gated schedule: what may happen now, what waits (and why), and when each app last migrated. */
export interface GateResult {
  placements: Record<string, AppPlacement>;
  deferred: Record<string, string>;
  migrated: Record<string, number>;
  /** Rebalances this decision applied (their records can go). */
  rebalancedNow: string[];
  /** Migrations this decision starts, and whether an operator asked for them (a move, a drain). */
  started: Array<{ app: string; cause: 'operator' | 'automatic' }>;
  /** Wall-clock ms at which a deferred migration may go (a window opens, a cooldown ends), if any. */
  wakeAt?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** True while `app` migrated (by the last decision `previous`) less than {@link MIGRATION_SLOT_MS} ago. */
export function migrating(
  previous: { migrated?: Record<string, number> } | undefined,
  app: string,
  now: number,
): boolean {
  const at = previous?.migrated?.[app];
  return at !== undefined && now - at < MIGRATION_SLOT_MS;
}

/** Cooldown and windows of an app, or why its declared policy cannot be used here. */
function policyOf(migrate: unknown): { cooldownMs?: number; windows?: readonly unknown[] } | string {
  if (migrate === undefined) return {};
  const r = migrationPolicySchema.safeParse(migrate);
  return r.success ? r.data : `its migration policy cannot be used here (${r.error.issues[0]?.message})`;
}

/** Gates `next` against the last decision (see the file's header). Pure. */
export function gateMigrations(g: GateInput): GateResult {
  const placements: Record<string, AppPlacement> = { ...g.next };
  const deferred: Record<string, string> = {};
  const migrated: Record<string, number> = {};
  const policies = new Map([...g.apps].map(([app, a]) => [app, policyOf(a.migrate)]));
  const cooldownOf = (app: string) => {
    const p = policies.get(app);
    return (typeof p === 'object' ? p.cooldownMs : undefined) ?? g.limits.cooldownMs;
  };
  // Kept for as long as it matters: the app's own cooldown (or a slot's life), declared or not right now.
  for (const [app, at] of Object.entries(g.migrated))
    if (g.now - at < Math.max(MIGRATION_SLOT_MS, cooldownOf(app))) migrated[app] = at;
  const declares = (node: string, app: string) => g.declarations.get(node)?.apps[app] !== undefined;
  const active = (node: string, app: string) => g.declarations.get(node)?.active?.includes(app) === true;
  const draining = (n: string) => g.admins.get(n)?.drain !== undefined;
  const converged = (app: string): boolean => {
    const p = g.previous[app];
    if (!p) return true;
    if (g.apps.get(app)?.mode === 'active-passive')
      return p.leader === undefined || !g.live.has(p.leader) || g.leaders[app] === p.leader;
    const running = [...g.live].filter((n) => active(n, app));
    return (
      p.nodes.filter((n) => g.live.has(n)).every((n) => active(n, app)) &&
      running.every((n) => p.nodes.includes(n))
    );
  };
  // Slots: apps that migrated recently and have not reached their last decision yet.
  let inFlight = Object.entries(migrated).filter(
    ([app, at]) => g.now - at < MIGRATION_SLOT_MS && !converged(app),
  ).length;
  let wakeAt: number | undefined;
  const wake = (t: number) => (wakeAt = Math.min(wakeAt ?? t, t));
  const rebalancedNow: string[] = [];
  const started: GateResult['started'] = [];
  for (const app of Object.keys(g.next).sort()) {
    const before = g.previous[app];
    const after = g.next[app]!;
    if (!before) continue;
    // Nodes the app leaves for reasons no gate holds: gone, not declaring it, or drained (the drain's plan,
    // with its budgets, already decided that they may go).
    const gone = before.nodes.filter(
      (n) => !g.live.has(n) || !declares(n, app) || (draining(n) && !after.nodes.includes(n)),
    );
    const removed = before.nodes.filter((n) => !after.nodes.includes(n) && !gone.includes(n));
    const actual = g.leaders[app];
    // Sending the lead to the node that holds it is no migration (a failover the decision follows), unless
    // a migration of the app is under way: then it is going back on it.
    const backToActual =
      after.leader === actual && !(g.now - (g.migrated[app] ?? -Infinity) < MIGRATION_SLOT_MS);
    const leaderMoves =
      after.leader !== undefined &&
      after.leader !== before.leader &&
      !backToActual &&
      !(before.leader !== undefined && gone.includes(before.leader)) &&
      !(actual !== undefined && gone.includes(actual));
    if (removed.length === 0 && !leaderMoves) {
      // A drain moving it is a migration (an operator's); a node that died or stopped declaring it is not.
      if (gone.some((n) => g.live.has(n) && draining(n))) {
        migrated[app] = g.now;
        started.push({ app, cause: 'operator' });
      }
      if (g.rebalanced.has(app)) rebalancedNow.push(app);
      continue;
    }
    if (g.moved.has(app)) {
      migrated[app] = g.now;
      started.push({ app, cause: 'operator' });
      continue;
    }
    const policy = policies.get(app)!;
    let why: string | undefined;
    if (typeof policy === 'string') why = `${policy}; automatic migrations wait until it is fixed`;
    else {
      const last = g.migrated[app];
      const cooldownMs = cooldownOf(app);
      let window: ReturnType<typeof windowStatus> | string;
      try {
        window = windowStatus(policy.windows as Parameters<typeof windowStatus>[0], g.now);
      } catch (err) {
        window = (err as Error).message;
      }
      if (!g.rebalanced.has(app) && last !== undefined && g.now < last + cooldownMs) {
        why = `cooldown: it migrated at ${iso(last)}; the next automatic migration may start at ${iso(last + cooldownMs)}`;
        wake(last + cooldownMs);
      } else if (typeof window === 'string')
        why = `its maintenance windows cannot be evaluated here (${window}); automatic migrations wait`;
      else if (!window.open) {
        why = `outside its maintenance windows${window.opensAt !== undefined ? `; the next opens at ${iso(window.opensAt)}` : ' (none opens again)'}`;
        if (window.opensAt !== undefined) wake(window.opensAt);
      } else if (inFlight >= g.limits.maxConcurrentMigrations)
        why = `waits for a migration slot (maxConcurrentMigrations ${g.limits.maxConcurrentMigrations})`;
    }
    if (why === undefined) {
      migrated[app] = g.now;
      started.push({ app, cause: 'automatic' });
      inFlight++;
      if (g.rebalanced.has(app)) rebalancedNow.push(app);
      continue;
    }
    deferred[app] = why;
    // The last decision stands, but for what no gate holds: nodes gone or drained are replaced by as many of
    // the nodes the new schedule adds (so counts and constraints stay as the schedule made them).
    const kept = before.nodes.filter((n) => !gone.includes(n));
    const adds = after.nodes.filter((n) => !before.nodes.includes(n)).slice(0, gone.length);
    let nodes = [...kept, ...adds].sort();
    // A pool over its maxNodes (a drain's replacement started before the drained instance stopped, and
    // the drain was called off) shrinks to it all the same, keeping the nodes the new schedule keeps.
    const max = g.apps.get(app)?.maxNodes;
    if (g.apps.get(app)?.mode === 'pool' && max !== undefined && nodes.length > max)
      nodes = [
        ...nodes.filter((n) => after.nodes.includes(n)),
        ...nodes.filter((n) => !after.nodes.includes(n)),
      ]
        .slice(0, max)
        .sort();
    const leader = [before.leader, actual, after.leader].find((n) => n !== undefined && nodes.includes(n));
    placements[app] = { nodes, ...(leader !== undefined ? { leader } : {}) };
  }
  return {
    placements,
    deferred,
    migrated,
    rebalancedNow,
    started,
    ...(wakeAt !== undefined ? { wakeAt } : {}),
  };
}
