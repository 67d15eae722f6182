// The placement gate's hooks (app-placement.ts): onMigrationStart, onMigrationComplete, onPlacementInvalid.
import type { Election } from '@gc/election';
import type { AppDeps } from './app-deps.js';
import type { AppOptions } from './app-options.js';
import type { AppTransitions } from './app-transitions.js';
import type { MigrationAnswer, MigrationCompleteContext, MigrationContext } from './hook-types.js';
import type { HookRunner } from './hooks.js';
import type { PlacementView } from './placement/agent.js';
import { AppMode, AppRole } from './types.js';

/** An `onMigrationStart` that refused is asked again after this long (sooner when the migration changes). */
export const MIGRATION_RETRY_MS = 5000;
/** A migration whose app left here but that did not end (another node leading) within this long is given up. */
export const MIGRATION_TIMEOUT_MS = 60_000;

/**
 * One migration of the app away from this node, from the first `onMigrationStart` call to its end. Tracked
 * only while the app has `onMigrationStart` or `onMigrationComplete` hooks: without them the gate leaves at
 * once, as it always did.
 */
export interface Migration {
  /** Active-passive: where the lead goes (undefined: the app just leaves). */
  to: string | undefined;
  reason: string;
  /** What the hook was last asked with (target, forced): a change asks again at once. */
  askedKey: string;
  generation: number;
  firstAskedAt: number;
  askedAt: number;
  /** The hook runs now. */
  asking: boolean;
  /** Why the hook keeps the app here (published in the declaration), while it does. */
  refused: string | undefined;
  /** When the hook let the app go (or a forced drain overrode it). */
  allowedAt: number | undefined;
  /** When the app started leaving (step-down or deactivation begun). */
  leftAt: number | undefined;
  /** Active-passive: the step-down is done (a lead held after it came back). */
  steppedDown: boolean;
  abort: AbortController;
  /** Stops following the election's leader events. */
  off: (() => void) | undefined;
}

/** The refusal in a hook's answer, if it is one. */
function refusalOf(answer: MigrationAnswer): string | undefined {
  if (answer === null || typeof answer !== 'object' || !('refuse' in answer)) return undefined;
  const why = answer.refuse as unknown;
  return typeof why === 'string' && why ? why : 'refused (no reason given)';
}

/** What the placement gate and its hooks are given of their app. */
export interface PlacedAppDeps {
  name: string;
  o: AppOptions;
  d: AppDeps;
  t: AppTransitions;
  election: () => Election | undefined;
  /** The app's hooks (`onMigrationStart`, `onMigrationComplete`, `onPlacementInvalid`). */
  hooks: HookRunner;
}

/** One app's placement hooks for its `PlacementGate`, and the migration away from this node they follow. */
export class PlacementHooks {
  /** The migration away from this node in progress (only with migration hooks). */
  #migration: Migration | undefined;
  /** The unsatisfiable reason `onPlacementInvalid` was last called for (undefined: placeable). */
  #invalid: string | undefined;

  constructor(
    private readonly a: PlacedAppDeps & {
      /** True once the gate closed (the app stops on this node). */
      closed: () => boolean;
      /** Acts on the gate's last view again (once `onMigrationStart` let the app go). */
      apply: () => void;
    },
  ) {}

  /** Why `onMigrationStart` keeps the app here, while it does (published in the declaration). */
  refused(): string | undefined {
    return this.#migration?.refused;
  }

  /** `onPlacementInvalid`, once per change of the scheduler's reason (nothing when placeable again). */
  invalidChanged(v: PlacementView): void {
    const key = v.invalid ? `${v.invalid.constraint}: ${v.invalid.message}` : undefined;
    if (key === this.#invalid) return;
    this.#invalid = key;
    const { hooks, name, d } = this.a;
    if (!v.invalid || !hooks.has('onPlacementInvalid')) return;
    const { constraint, message } = v.invalid;
    d.audit('placement.invalid', { constraint, reason: message, generation: v.generation }, 'warn');
    void hooks.run('onPlacementInvalid', { app: name, nodeId: d.nodeId, reason: message, constraint });
  }

  /**
   * True when the app may leave this node now for a migration (to `to`, for `reason`): at once without
   * migration hooks; otherwise once `onMigrationStart` let it go or a forced drain overrode its refusal.
   * Asks the hook (in the background; the gate applies again when it answered) when it has not been asked
   * about this migration, asked again after MIGRATION_RETRY_MS or when the target or the forcing changed.
   */
  mayLeave(v: PlacementView, to: string | undefined, reason: string): boolean {
    const { hooks, d } = this.a;
    if (!this.#migration && !hooks.has('onMigrationStart') && !hooks.has('onMigrationComplete')) return true;
    const now = d.clock.now();
    const m = (this.#migration ??= {
      to,
      reason,
      askedKey: '',
      generation: v.generation,
      firstAskedAt: now,
      askedAt: 0,
      asking: false,
      refused: undefined,
      allowedAt: undefined,
      leftAt: undefined,
      steppedDown: false,
      abort: new AbortController(),
      off: undefined,
    });
    // Consent is for one migration: another target or reason (a move, then a drain) asks again.
    if (m.allowedAt !== undefined && m.leftAt === undefined && (m.to !== to || m.reason !== reason))
      m.allowedAt = undefined;
    m.to = to;
    m.reason = reason;
    if (m.allowedAt !== undefined) return true;
    if (!hooks.has('onMigrationStart')) {
      m.allowedAt = now;
      return true;
    }
    const forced = v.forced === true;
    const key = JSON.stringify([to ?? null, reason, forced]);
    // A forced drain does not wait for the hook: it is told (in the background; a refusal is overridden).
    if (forced) {
      if (key !== m.askedKey) this.#ask(m, v, forced, key);
      m.refused = undefined;
      m.allowedAt = now;
      return true;
    }
    // Asked once per migration; again while it refuses, now and then or when what it was asked changed. (Not
    // on every decision: a decision that only reports this node's refusal must not ask again at once.)
    if (m.asking || (key === m.askedKey && now - m.askedAt < MIGRATION_RETRY_MS)) return false;
    this.#ask(m, v, forced, key);
    return false;
  }

  #ask(m: Migration, v: PlacementView, forced: boolean, key: string): void {
    const { hooks, name, d, t } = this.a;
    m.asking = true;
    m.askedKey = key;
    m.askedAt = d.clock.now();
    m.generation = v.generation;
    const ctx: MigrationContext = {
      app: name,
      nodeId: d.nodeId,
      ...(m.to !== undefined ? { to: m.to } : {}),
      reason: m.reason,
      detail: v.reason,
      forced,
      generation: v.generation,
      signal: m.abort.signal,
    };
    void hooks.ask('onMigrationStart', ctx).then(({ results, failures }) => {
      m.asking = false;
      const refusals = [
        ...results.flatMap((r) => refusalOf(r) ?? []),
        ...failures.map((f) => `onMigrationStart failed: ${f.error.message}`),
      ];
      const refused = refusals.join('; ');
      const data = {
        epoch: t.epoch,
        ...(m.to !== undefined ? { to: m.to } : {}),
        reason: m.reason,
        detail: v.reason,
        generation: v.generation,
      };
      // A forced drain went on without waiting for this answer: only what it said is recorded.
      if (forced) {
        if (refusals.length) d.audit('placement.migration_overridden', { ...data, refused, forced }, 'warn');
        else d.audit('placement.migration_start', { ...data, forced });
        return;
      }
      // Given up meanwhile, or the app went on without this answer.
      if (this.#migration !== m || this.a.closed() || m.allowedAt !== undefined) return;
      if (refusals.length) {
        // Audited when the refusal starts or its reason changes; logged each time it is asked again.
        if (refused !== m.refused) d.audit('placement.migration_refused', { ...data, refused }, 'warn');
        else d.logger.info('placement: onMigrationStart still refuses', { ...data, refused });
        m.refused = refused;
        return;
      }
      d.audit('placement.migration_start', { ...data, forced });
      m.refused = undefined;
      m.allowedAt = d.clock.now();
      this.a.apply();
    });
  }

  /** The app starts leaving for the migration in progress (if any): follow it to its end. */
  startedLeaving(): Migration | undefined {
    const m = this.#migration;
    if (!m || m.leftAt !== undefined) return m;
    m.leftAt = this.a.d.clock.now();
    m.refused = undefined;
    m.off = this.a.election()?.on('leader', () => this.followMigration());
    return m;
  }

  /** Ends the migration that left here once it is done (or clearly will not be). */
  followMigration(): void {
    const m = this.#migration;
    if (!m) return;
    const { t, d, o } = this.a;
    if (m.leftAt === undefined) {
      // Let go but never left (the hand-over target stopped being ready, the decision changed): give it up.
      if (m.allowedAt !== undefined && d.clock.now() - m.allowedAt >= MIGRATION_TIMEOUT_MS)
        this.#endMigration(
          m,
          'abandoned',
          undefined,
          `allowed but not started within ${MIGRATION_TIMEOUT_MS} ms`,
        );
      return;
    }
    const passive = t.role === AppRole.Passive || t.role === AppRole.Stopped;
    if (o.mode === AppMode.Pool) {
      if (passive) return this.#endMigration(m, 'completed', undefined);
    } else {
      const holder = this.a.election()?.leader().holder ?? null;
      if (holder !== null && holder !== d.nodeId) return this.#endMigration(m, 'completed', holder);
      if (m.to === undefined && passive && holder === null)
        return this.#endMigration(m, 'completed', undefined);
      // This node's own state, not the lease as last seen (right after the step-down it may still name us).
      if (m.steppedDown && this.a.election()?.isLeader() === true)
        return this.#endMigration(m, 'abandoned', undefined, 'the lead came back to this node');
    }
    if (d.clock.now() - m.leftAt >= MIGRATION_TIMEOUT_MS)
      this.#endMigration(m, 'abandoned', undefined, `not done within ${MIGRATION_TIMEOUT_MS} ms of leaving`);
  }

  /** Gives up the migration in progress unless the app already left (its end is then followed). */
  dropMigration(why: string): void {
    const m = this.#migration;
    if (!m || m.leftAt !== undefined) return;
    this.#endMigration(m, 'abandoned', undefined, why);
  }

  /** Gives up the migration in progress, whether or not the app already left. */
  abandonMigration(why: string): void {
    if (this.#migration) this.#endMigration(this.#migration, 'abandoned', undefined, why);
  }

  #endMigration(
    m: Migration,
    result: MigrationCompleteContext['result'],
    to: string | undefined,
    detail?: string,
  ): void {
    const { hooks, name, d, t } = this.a;
    this.#migration = undefined;
    m.off?.();
    if (result === 'abandoned') m.abort.abort(new Error(`migration abandoned: ${detail ?? result}`));
    const now = d.clock.now();
    const ctx: MigrationCompleteContext = {
      app: name,
      nodeId: d.nodeId,
      from: d.nodeId,
      ...(to !== undefined ? { to } : {}),
      tookMs: Math.max(
        0,
        Math.round(now - (result === 'completed' ? (m.allowedAt ?? m.firstAskedAt) : m.firstAskedAt)),
      ),
      reason: m.reason,
      result,
      ...(detail !== undefined ? { detail } : {}),
    };
    const { app: _app, nodeId: _node, ...data } = ctx;
    d.audit(
      result === 'completed' ? 'placement.migration_complete' : 'placement.migration_abandoned',
      { epoch: t.epoch, ...data },
      result === 'completed' ? 'info' : 'warn',
    );
    if (hooks.has('onMigrationComplete')) void hooks.run('onMigrationComplete', ctx);
    // A refusal published for it goes with it (the agent writes the declaration within its refresh).
  }
}
