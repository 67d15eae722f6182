// What placement means for one app on this node: whether it contends for the lead (active-passive) or is
// active (pool), at which election priority, and when its leader hands over because the app moved away.
import { MAX_PRIORITY, type Election } from '@gc/election';
import type { Clock } from '@gc/core';
import type { ReplicatedDatabase } from '@gc/wal';
import type { AppDeps } from './app-deps.js';
import type { AppOptions } from './app-options.js';
import type { AppTransitions } from './app-transitions.js';
import type { MigrationAnswer, MigrationCompleteContext, MigrationContext } from './hook-types.js';
import type { HookRunner } from './hooks.js';
import type { PlacedApp, PlacementView } from './placement/agent.js';
import { AppMode, AppRole, type AppStatus } from './types.js';

/** How long a leader the app was moved away from waits for its successor's standby to be ready. */
export const LEAVE_WAIT_MS = 30_000;
/**
 * Cooldown of a leader of an app with placement after a step-down: longer than the wait of a non-preferred
 * standby for a free lease (10 priority steps of 50 ms), so the lead goes to another node.
 */
export const PLACEMENT_STEPDOWN_COOLDOWN_MS = 2000;
/** A standby is ready for a hand-over when its replica follows and is less than this far behind. */
export const READY_LAG_MS = 2000;
/**
 * After a hand-over that came back (the lead returned to this node within HANDBACK_WINDOW_MS: the target
 * could not stay active), no hand-over to that node for this long: a target that fails its activation must
 * not take the app down again and again.
 */
export const HANDOVER_BACKOFF_MS = 5 * 60_000;
const HANDBACK_WINDOW_MS = 60_000;
/** A pool activation that failed is tried again after this long (doubling up to 30 s). */
const POOL_RETRY_MS = 1000;
/** An `onMigrationStart` that refused is asked again after this long (sooner when the migration changes). */
export const MIGRATION_RETRY_MS = 5000;
/** A migration whose app left here but that did not end (another node leading) within this long is given up. */
export const MIGRATION_TIMEOUT_MS = 60_000;

/**
 * One migration of the app away from this node, from the first `onMigrationStart` call to its end. Tracked
 * only while the app has `onMigrationStart` or `onMigrationComplete` hooks: without them the gate leaves at
 * once, as it always did.
 */
interface Migration {
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

/** The placement side of one app (see `AppOptions.placement`). */
export class PlacementGate {
  /** The last view the placement agent gave; undefined before the first. */
  view: PlacementView | undefined;
  #handingOver: Promise<void> | undefined;
  #leaveTimer: ReturnType<Clock['setTimeout']> | undefined;
  #closed = false;
  /** The last hand-over from this node: to whom, when. */
  #handedTo: { node: string; at: number } | undefined;
  /** No hand-over to `node` before `until` (it failed to keep the lead). */
  #noHandoverTo: { node: string; until: number } | undefined;
  /** Pool: no activation attempt before this time (after a failed one), and the next wait. */
  #poolRetryAt = 0;
  #poolRetryMs = POOL_RETRY_MS;
  /** Active-passive: the new leader's standby was not ready within LEAVE_WAIT_MS; leave without it. */
  #leaveDue = false;
  /** The migration away from this node in progress (only with migration hooks). */
  #migration: Migration | undefined;
  /** The unsatisfiable reason `onPlacementInvalid` was last called for (undefined: placeable). */
  #invalid: string | undefined;

  constructor(
    private readonly a: {
      name: string;
      o: AppOptions;
      d: AppDeps;
      t: AppTransitions;
      election: () => Election | undefined;
      db: () => ReplicatedDatabase | undefined;
      /** The app's hooks (`onMigrationStart`, `onMigrationComplete`, `onPlacementInvalid`). */
      hooks: HookRunner;
      /** True once the app's start began (and not stopping). */
      running: () => boolean;
      stepDown: () => Promise<void>;
    },
  ) {}

  /** The app as the placement agent sees it. */
  placed(): PlacedApp {
    const { name, o, t } = this.a;
    return {
      name,
      spec: () => ({
        mode: o.mode,
        placement: o.placement ?? {},
        ...(o.budget ? { budget: o.budget } : {}),
        ...(o.migrate ? { migrate: o.migrate } : {}),
      }),
      // Activating and deactivating count: the app is not gone from this node yet (a drain waits for it).
      activeHere: () => t.role !== AppRole.Passive && t.role !== AppRole.Stopped,
      readyHere: () => {
        if (o.mode !== AppMode.ActivePassive || t.role !== AppRole.Passive) return false;
        // A node whose activations fail is no standby to hand over to.
        if (t.activation) return false;
        // Contending now: a candidate that is not cooling down after a step-down of its own.
        const e = this.a.election();
        if (!e?.isCandidate() || e.state() !== 'follower') return false;
        const r = this.a.db()?.status();
        return !r || (r.state === 'following' && r.lagMs < READY_LAG_MS);
      },
      refusedHere: () => this.#migration?.refused,
      applyPlacement: (view) => {
        this.view = view;
        this.apply();
      },
    };
  }

  /** Acts on the last view: contend or not, hand the lead over, activate or deactivate. */
  apply(): void {
    const v = this.view;
    const { t, d } = this.a;
    if (!v || this.#closed || !this.a.running()) return;
    this.#invalidChanged(v);
    this.#followMigration();
    // No node may run the app now (a constraint lost its last node, minNodes not met): leave it as it is here
    // rather than stop it everywhere; the `placement` health check says so. A drain of this node still goes.
    if (v.unsatisfiable && !v.drainingHere) return;
    if (this.a.o.mode === AppMode.Pool) return this.#applyPool(v);
    const election = this.a.election();
    if (!election) return; // applied again once the election exists
    if (!v.placed) {
      election.setCandidate(false);
      if (!election.isLeader()) return this.#dropMigration('this node does not lead the app any more');
      if (this.#handingOver) return;
      // Leave at once when the new leader's standby is ready (or there is none to wait for: the app may run
      // nowhere); otherwise wait for it, at most LEAVE_WAIT_MS, so that the move costs a switchover, not an
      // outage while a standby starts.
      if (v.leader !== undefined && !v.handoverReady && !this.#leaveDue) {
        this.#leaveTimer ??= d.clock.setTimeout(() => {
          this.#leaveTimer = undefined;
          this.#leaveDue = true;
          this.apply();
        }, LEAVE_WAIT_MS);
        return;
      }
      if (!this.#mayLeave(v, v.leader, v.drainingHere ? 'drain' : 'placement changed')) return;
      this.#leave(this.#leaveDue ? `its new leader was not ready within ${LEAVE_WAIT_MS} ms` : v.reason);
      return;
    }
    this.#clearLeave();
    const preferred = v.leader === undefined || v.leader === d.nodeId;
    // The preferred node wins a free lease: the others wait ten priority steps before they try.
    election.setCandidate(true, { priority: preferred ? MAX_PRIORITY : 0 });
    if (!election.isLeader()) return this.#dropMigration('this node does not lead the app any more');
    if (preferred) return this.#dropMigration('this node is the preferred leader again');
    if (!v.handoverReady || this.#handingOver) return;
    const now = d.clock.now();
    const to = v.leader!;
    if (this.#handedTo?.node === to && now - this.#handedTo.at < HANDBACK_WINDOW_MS) {
      // The lead came back from `to` soon after it was handed over: it cannot keep it. Stay, and say so.
      this.#noHandoverTo = { node: to, until: now + HANDOVER_BACKOFF_MS };
      this.#handedTo = undefined;
      d.audit('placement.handover_failed', { epoch: t.epoch, to, backoffMs: HANDOVER_BACKOFF_MS }, 'warn');
    }
    if (this.#noHandoverTo?.node === to && now < this.#noHandoverTo.until) return;
    if (!this.#mayLeave(v, to, v.drainingHere ? 'drain' : 'moved')) return;
    this.#handedTo = { node: to, at: now };
    d.audit('placement.handover', { epoch: t.epoch, to, reason: v.reason });
    this.#stepDown();
  }

  /** Pool: active where placed, with a retry (backing off) after a failed activation. */
  #applyPool(v: PlacementView): void {
    const { t, d } = this.a;
    if (!v.placed) {
      this.#poolRetryMs = POOL_RETRY_MS;
      if (t.role !== AppRole.Active) return this.#dropMigration('the app is not active here any more');
      if (!this.#mayLeave(v, undefined, v.drainingHere ? 'drain' : 'placement changed')) return;
      this.#startedLeaving();
      void t.enqueue(() => t.deactivate(`not placed: ${v.reason}`)).then(() => this.#followMigration());
      return;
    }
    this.#dropMigration('the app is placed here again');
    // Only from passive (not while activating or deactivating), and not before the retry time.
    if (t.role !== AppRole.Passive || d.clock.now() < this.#poolRetryAt) return;
    this.#poolRetryAt = Number.MAX_SAFE_INTEGER; // one attempt at a time
    void t
      .enqueue(() => t.activate(0, `placed (generation ${v.generation})`))
      .then(() => {
        const failed = t.role !== AppRole.Active;
        this.#poolRetryAt = failed ? d.clock.now() + this.#poolRetryMs : 0;
        this.#poolRetryMs = failed ? Math.min(30_000, this.#poolRetryMs * 2) : POOL_RETRY_MS;
      });
  }

  /** What `app.status().placement` shows. */
  status(): NonNullable<AppStatus['placement']> {
    const v = this.view ?? {
      placed: false,
      handoverReady: false,
      reason: 'waiting for the scheduler',
      generation: 0,
    };
    const e = this.a.election();
    const contending = e
      ? e.isCandidate() && (e.state() === 'follower' || e.state() === 'leader')
      : undefined;
    // What the gate alone reads (a forced drain, the unsatisfiable entry) stays out of the status.
    const { forced: _forced, invalid: _invalid, ...shown } = v;
    return { ...shown, ...(contending !== undefined ? { contending } : {}) };
  }

  close(): void {
    this.#closed = true;
    this.#clearLeave();
    this.#followMigration();
    // Stopping is no migration: one in progress (asked about, or left and not done yet) is given up.
    if (this.#migration)
      this.#endMigration(this.#migration, 'abandoned', undefined, 'the app stops on this node');
  }

  /** Steps down because placement moved the app away from this node. */
  #leave(reason: string): void {
    this.#clearLeave();
    if (!this.a.election()?.isLeader() || this.#handingOver) return;
    this.a.d.audit('placement.leave', { epoch: this.a.t.epoch, reason, to: this.view?.leader ?? null });
    this.#stepDown();
  }

  #stepDown(): void {
    const m = this.#startedLeaving();
    this.#handingOver = this.a
      .stepDown()
      .catch((err: unknown) => this.a.d.logger.error('placement: step-down failed', { err }))
      .finally(() => {
        this.#handingOver = undefined;
        if (m) m.steppedDown = true;
        this.#followMigration();
      });
  }

  #clearLeave(): void {
    if (this.#leaveTimer !== undefined) this.a.d.clock.clearTimeout(this.#leaveTimer);
    this.#leaveTimer = undefined;
    this.#leaveDue = false;
  }

  /** `onPlacementInvalid`, once per change of the scheduler's reason (nothing when placeable again). */
  #invalidChanged(v: PlacementView): void {
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
  #mayLeave(v: PlacementView, to: string | undefined, reason: string): boolean {
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
      if (this.#migration !== m || this.#closed || m.allowedAt !== undefined) return;
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
      this.apply();
    });
  }

  /** The app starts leaving for the migration in progress (if any): follow it to its end. */
  #startedLeaving(): Migration | undefined {
    const m = this.#migration;
    if (!m || m.leftAt !== undefined) return m;
    m.leftAt = this.a.d.clock.now();
    m.refused = undefined;
    m.off = this.a.election()?.on('leader', () => this.#followMigration());
    return m;
  }

  /** Ends the migration that left here once it is done (or clearly will not be). */
  #followMigration(): void {
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
  #dropMigration(why: string): void {
    const m = this.#migration;
    if (!m || m.leftAt !== undefined) return;
    this.#endMigration(m, 'abandoned', undefined, why);
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
