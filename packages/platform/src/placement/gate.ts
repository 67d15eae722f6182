// Which of a decision's migrations may happen now. A migration is an app leaving a live node that still
// declares it, or an active-passive app's lead moving off a live node. Operators' moves and drains go
// through (a drain has its budgets and its deadline); automatic ones — a label or spec change, a better
// score, a rebalance — wait for the app's cooldown, its maintenance windows and a free migration slot, and
// keep their previous placement meanwhile (new nodes may be added; none is taken away).
import { windowStatus, type AppPlacement, type MigrationPolicy } from '@gc/placement';
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
  /** Where each app runs now (the last decision, with active-passive leaders where they lead). */
  current: Readonly<Record<string, AppPlacement>>;
  /** The new schedule. */
  next: Readonly<Record<string, AppPlacement>>;
  /** App → mode and policy. */
  apps: ReadonlyMap<string, { mode: string; migrate?: MigrationPolicy }>;
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
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Gates `next` against `current` (see the file's header). Pure. */
export function gateMigrations(g: GateInput): GateResult {
  const placements: Record<string, AppPlacement> = { ...g.next };
  const deferred: Record<string, string> = {};
  const migrated: Record<string, number> = {};
  for (const [app, at] of Object.entries(g.migrated))
    if (g.apps.has(app) && g.now - at < Math.max(MIGRATION_SLOT_MS, g.limits.cooldownMs)) migrated[app] = at;
  const declares = (node: string, app: string) => g.declarations.get(node)?.apps[app] !== undefined;
  const active = (node: string, app: string) => g.declarations.get(node)?.active?.includes(app) === true;
  const converged = (app: string, p: AppPlacement | undefined): boolean => {
    if (!p) return true;
    if (g.apps.get(app)?.mode === 'active-passive')
      return p.leader === undefined || g.leaders[app] === p.leader;
    const running = [...g.live].filter((n) => active(n, app));
    return (
      p.nodes.filter((n) => g.live.has(n)).every((n) => active(n, app)) &&
      running.every((n) => p.nodes.includes(n))
    );
  };
  // Slots: apps that migrated recently and have not settled yet.
  let inFlight = Object.entries(migrated).filter(
    ([app, at]) => g.now - at < MIGRATION_SLOT_MS && !converged(app, g.current[app]),
  ).length;
  const rebalancedNow: string[] = [];
  const started: GateResult['started'] = [];
  for (const app of Object.keys(g.next).sort()) {
    const before = g.current[app];
    const after = g.next[app]!;
    if (!before) continue;
    const removed = before.nodes.filter((n) => g.live.has(n) && declares(n, app) && !after.nodes.includes(n));
    const leaderMoves =
      before.leader !== undefined &&
      g.live.has(before.leader) &&
      declares(before.leader, app) &&
      after.leader !== before.leader;
    if (removed.length === 0 && !leaderMoves) {
      if (g.rebalanced.has(app)) rebalancedNow.push(app);
      continue;
    }
    const draining = (n: string) => g.admins.get(n)?.drain !== undefined;
    const byOperator =
      g.moved.has(app) || (removed.every(draining) && (!leaderMoves || draining(before.leader!)));
    const policy = g.apps.get(app)?.migrate;
    let why: string | undefined;
    if (!byOperator) {
      const cooldownMs = policy?.cooldownMs ?? g.limits.cooldownMs;
      const last = g.migrated[app];
      const window = windowStatus(policy?.windows, g.now);
      if (!g.rebalanced.has(app) && last !== undefined && g.now < last + cooldownMs)
        why = `cooldown: it migrated at ${iso(last)}; the next automatic migration may start at ${iso(last + cooldownMs)}`;
      else if (!window.open)
        why = `outside its maintenance windows${window.opensAt !== undefined ? `; the next opens at ${iso(window.opensAt)}` : ' (none opens again)'}`;
      else if (inFlight >= g.limits.maxConcurrentMigrations)
        why = `${inFlight} migrations in flight (maxConcurrentMigrations ${g.limits.maxConcurrentMigrations}); it waits for one to settle`;
    }
    if (why !== undefined) {
      deferred[app] = why;
      // Keep what runs; nodes the new schedule adds may start (nothing is taken away).
      const nodes = [...new Set([...before.nodes.filter((n) => g.live.has(n)), ...after.nodes])].sort();
      const leader = before.leader !== undefined && g.live.has(before.leader) ? before.leader : after.leader;
      placements[app] = { nodes, ...(leader !== undefined ? { leader } : {}) };
      continue;
    }
    migrated[app] = g.now;
    started.push({ app, cause: byOperator ? 'operator' : 'automatic' });
    if (!byOperator) inFlight++;
    if (g.rebalanced.has(app)) rebalancedNow.push(app);
  }
  return { placements, deferred, migrated, rebalancedNow, started };
}
