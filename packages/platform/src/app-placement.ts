// What placement means for one app on this node: whether it contends for the lead (active-passive) or is
// active (pool), at which election priority, and when its leader hands over because the app moved away.
import { MAX_PRIORITY } from '@gc/election';
import type { Clock } from '@gc/core';
import type { ReplicatedDatabase } from '@gc/wal';
import { PlacementHooks, type PlacedAppDeps } from './app-placement-hooks.js';
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
export { MIGRATION_RETRY_MS, MIGRATION_TIMEOUT_MS } from './app-placement-hooks.js';

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
  /** The migration away from this node (only with migration hooks) and the placement hooks. */
  readonly #hooks: PlacementHooks;

  constructor(
    private readonly a: PlacedAppDeps & {
      db: () => ReplicatedDatabase | undefined;
      /** True once the app's start began (and not stopping). */
      running: () => boolean;
      stepDown: () => Promise<void>;
    },
  ) {
    this.#hooks = new PlacementHooks({ ...a, closed: () => this.#closed, apply: () => this.apply() });
  }

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
      refusedHere: () => this.#hooks.refused(),
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
    this.#hooks.invalidChanged(v);
    this.#hooks.followMigration();
    // No node may run the app now (a constraint lost its last node, minNodes not met): leave it as it is here
    // rather than stop it everywhere; the `placement` health check says so. A drain of this node still goes.
    if (v.unsatisfiable && !v.drainingHere) return;
    if (this.a.o.mode === AppMode.Pool) return this.#applyPool(v);
    const election = this.a.election();
    if (!election) return; // applied again once the election exists
    if (!v.placed) {
      election.setCandidate(false);
      if (!election.isLeader()) return this.#hooks.dropMigration('this node does not lead the app any more');
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
      if (!this.#hooks.mayLeave(v, v.leader, v.drainingHere ? 'drain' : 'placement changed')) return;
      this.#leave(this.#leaveDue ? `its new leader was not ready within ${LEAVE_WAIT_MS} ms` : v.reason);
      return;
    }
    this.#clearLeave();
    const preferred = v.leader === undefined || v.leader === d.nodeId;
    // The preferred node wins a free lease: the others wait ten priority steps before they try.
    election.setCandidate(true, { priority: preferred ? MAX_PRIORITY : 0 });
    if (!election.isLeader()) return this.#hooks.dropMigration('this node does not lead the app any more');
    if (preferred) return this.#hooks.dropMigration('this node is the preferred leader again');
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
    if (!this.#hooks.mayLeave(v, to, v.drainingHere ? 'drain' : 'moved')) return;
    this.#handedTo = { node: to, at: now };
    d.audit('placement.handover', { epoch: t.epoch, to, reason: v.reason });
    this.#stepDown();
  }

  /** Pool: active where placed, with a retry (backing off) after a failed activation. */
  #applyPool(v: PlacementView): void {
    const { t, d } = this.a;
    if (!v.placed) {
      this.#poolRetryMs = POOL_RETRY_MS;
      if (t.role !== AppRole.Active) return this.#hooks.dropMigration('the app is not active here any more');
      if (!this.#hooks.mayLeave(v, undefined, v.drainingHere ? 'drain' : 'placement changed')) return;
      this.#hooks.startedLeaving();
      void t.enqueue(() => t.deactivate(`not placed: ${v.reason}`)).then(() => this.#hooks.followMigration());
      return;
    }
    this.#hooks.dropMigration('the app is placed here again');
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
    this.#hooks.followMigration();
    // Stopping is no migration: one in progress (asked about, or left and not done yet) is given up.
    this.#hooks.abandonMigration('the app stops on this node');
  }

  /** Steps down because placement moved the app away from this node. */
  #leave(reason: string): void {
    this.#clearLeave();
    if (!this.a.election()?.isLeader() || this.#handingOver) return;
    this.a.d.audit('placement.leave', { epoch: this.a.t.epoch, reason, to: this.view?.leader ?? null });
    this.#stepDown();
  }

  #stepDown(): void {
    const m = this.#hooks.startedLeaving();
    this.#handingOver = this.a
      .stepDown()
      .catch((err: unknown) => this.a.d.logger.error('placement: step-down failed', { err }))
      .finally(() => {
        this.#handingOver = undefined;
        if (m) m.steppedDown = true;
        this.#hooks.followMigration();
      });
  }

  #clearLeave(): void {
    if (this.#leaveTimer !== undefined) this.a.d.clock.clearTimeout(this.#leaveTimer);
    this.#leaveTimer = undefined;
    this.#leaveDue = false;
  }
}
