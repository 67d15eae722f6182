// The platform's scheduler: one node at a time (elected in `{platform}_placement_election`) decides where
// every app with placement runs and writes it, fenced by its epoch, to the `state` key of the placement
// bucket. It decides again whenever a node joins, leaves or changes labels, a node's declaration or a
// cordon/drain changes, and every few seconds while a drain runs (deadlines, budgets that free up).
import type { NatsConnection } from '@nats-io/nats-core';
import { createElection, type Election } from '@gc/election';
import { plan } from '@gc/placement';
import {
  fencedKv,
  isCasConflict,
  isGcError,
  ErrorCode,
  keepWatching,
  resourceNames,
  type Clock,
  type FencedKv,
  type Logger,
} from '@gc/core';
import type { Membership } from '@gc/membership';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PlacementBucket } from './bucket.js';
import { decide, sameDecision } from './decide.js';
import { DEFAULT_MIGRATION_LIMITS, type MigrationLimits } from './gate.js';
import { PlacementKey, type PlacementState } from './records.js';

/** What the scheduler needs from the platform. */
export interface SchedulerDeps {
  nc: NatsConnection;
  platform: string;
  nodeId: string;
  bucket: PlacementBucket;
  membership: Membership;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  audit: (type: string, data: Record<string, unknown>, severity?: 'info' | 'warn' | 'error') => void;
  /**
   * Changes that follow a decision within this long are gathered into one decision after it (the first
   * change after a quiet spell is decided at once). Default 100 ms.
   */
  debounceMs?: number;
  /** How often a leading scheduler decides again without a change (drain deadlines). Default 2000 ms. */
  tickMs?: number;
  /** Cooldown and concurrency of automatic migrations (default `DEFAULT_MIGRATION_LIMITS`). */
  limits?: MigrationLimits;
}

/** The scheduler on this node: a candidate for the scheduler's election, and the decider while elected. */
export interface Scheduler {
  /** True while this node is the elected scheduler. */
  leading(): boolean;
  /** Decide now (after the debounce) if this node leads. */
  kick(): void;
  close(): Promise<void>;
}

/** A declaration of a node that is not a member is removed once it is this old (wall-clock ms). */
export const DECL_GRACE_MS = 10_000;

/** A move whose target has not taken the lead within this long is given up (and audited). */
export const MOVE_TIMEOUT_MS = 120_000;

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Starts this node's scheduler candidate. */
export async function startScheduler(d: SchedulerDeps): Promise<Scheduler> {
  const registers = [d.registry];
  const m = {
    seconds: metric(
      d.registry,
      'gc_placement_decision_seconds',
      () =>
        new Histogram({
          name: 'gc_placement_decision_seconds',
          help: 'Time to gather the inputs, decide and write one placement decision',
          buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
          registers,
        }),
    ),
    decisions: metric(
      d.registry,
      'gc_placement_decisions_total',
      () =>
        new Counter({
          name: 'gc_placement_decisions_total',
          help: 'Placement decisions by result: changed (written), unchanged, conflict (the state changed meanwhile: decided again), fenced, failed',
          labelNames: ['result'],
          registers,
        }),
    ),
    unsatisfiable: metric(
      d.registry,
      'gc_placement_unsatisfiable_apps',
      () =>
        new Gauge({
          name: 'gc_placement_unsatisfiable_apps',
          help: 'Apps that no node set satisfies, in the last decision of this node as scheduler',
          registers,
        }),
    ),
    blocked: metric(
      d.registry,
      'gc_placement_blocked_drains',
      () =>
        new Gauge({
          name: 'gc_placement_blocked_drains',
          help: 'Apps that hold a drain back (a disruption budget, no other node), in the last decision',
          registers,
        }),
    ),
    migrations: metric(
      d.registry,
      'gc_migration_started_total',
      () =>
        new Counter({
          name: 'gc_migration_started_total',
          help: 'Migrations (an app leaving a live node, or its lead moving) the scheduler started, by cause: operator (move, drain) or automatic (labels, spec, score, rebalance)',
          labelNames: ['cause'],
          registers,
        }),
    ),
    moves: metric(
      d.registry,
      'gc_migration_moves_total',
      () =>
        new Counter({
          name: 'gc_migration_moves_total',
          help: "Operators' moves of an active-passive app by result: done (the target leads) or abandoned (it did not within 2 minutes)",
          labelNames: ['result'],
          registers,
        }),
    ),
    deferred: metric(
      d.registry,
      'gc_migration_deferred_apps',
      () =>
        new Gauge({
          name: 'gc_migration_deferred_apps',
          help: 'Apps whose automatic migration waits (cooldown, maintenance window, concurrency), in the last decision of this node as scheduler',
          registers,
        }),
    ),
  };
  const election: Election = await createElection(d.nc, {
    bucket: resourceNames(d.platform).placementElection,
    nodeId: d.nodeId,
    clock: d.clock,
    logger: d.logger,
    registry: d.registry,
  });
  const fenced: FencedKv = fencedKv(d.bucket.kv, {
    epoch: () => (election.isLeader() ? election.epoch() : undefined),
    onFenced: (err) => election.observeEpoch(err.highest),
    name: d.bucket.bucket,
  });
  let closed = false;
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let mustWrite = false;
  let retry: ReturnType<Clock['setTimeout']> | undefined;
  let lastBlocked = '';
  const limits = d.limits ?? DEFAULT_MIGRATION_LIMITS;
  /** Deletes `key` unless it was written after `revision` (then it stays: it is news for the next run). */
  const deleteIfUnchanged = async (key: string, revision: number): Promise<void> => {
    try {
      await d.bucket.kv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
  };
  // A deferred migration may go at `at` (a window opens, a cooldown ends): decide again then.
  let wake: ReturnType<Clock['setTimeout']> | undefined;
  const wakeAt = (at: number | undefined): void => {
    if (wake !== undefined) d.clock.clearTimeout(wake);
    wake = undefined;
    if (at === undefined || closed) return;
    wake = d.clock.setTimeout(
      () => {
        wake = undefined;
        kick();
      },
      Math.max(0, at - d.clock.wallNow()) + 50,
    );
  };

  const run = async (): Promise<void> => {
    if (!election.isLeader() || closed) return;
    const t0 = d.clock.now();
    try {
      // Revisions first: a record written after they were read is never deleted below (the delete is
      // conditional on the revision read).
      const [declRevs, rebalanceRevs] = await Promise.all([
        d.bucket.revisions('decl'),
        d.bucket.revisions('rebalance'),
      ]);
      const [members, declarations, admins, moves, rebalances, previousEntry] = await Promise.all([
        d.membership.members(),
        d.bucket.declarations(),
        d.bucket.admins(),
        d.bucket.moves(),
        d.bucket.rebalances(),
        d.bucket.stateEntry(),
      ]);
      const { state: previous, revision: stateRevision } = previousEntry;
      const decision = decide({
        members,
        declarations,
        admins,
        moves,
        rebalances,
        previous,
        now: d.clock.wallNow(),
        limits,
      });
      // A move is done once its target leads: the record goes, so a later failover is not undone by it. One
      // that has not happened within MOVE_TIMEOUT_MS goes too (its target cannot take the lead), and says so.
      const wallNow = d.clock.wallNow();
      for (const [app, mv] of moves) {
        const done = declarations.get(mv.to)?.active?.includes(app) === true;
        if (!done && wallNow - mv.at < MOVE_TIMEOUT_MS) continue;
        await d.bucket.kv.delete(PlacementKey.move(app));
        m.moves.inc({ result: done ? 'done' : 'abandoned' });
        if (done) d.audit('app.moved', { app, to: mv.to, tookMs: Math.max(0, wallNow - mv.at) });
        else d.audit('app.move_abandoned', { app, to: mv.to, afterMs: MOVE_TIMEOUT_MS }, 'warn');
      }
      // A node that left the membership (crashed, cut off) keeps no declaration: what it said it ran is stale.
      // Only once it is DECL_GRACE_MS older than the newest one (the server's clock, not ours): a node back
      // from a pause declares before membership sees it again.
      const live = new Set(members.map((x) => x.nodeId));
      const serverNow = Math.max(0, ...[...declRevs.values()].map((r) => r.created));
      for (const [node, r] of declRevs) {
        if (live.has(node) || serverNow - r.created < DECL_GRACE_MS) continue;
        await deleteIfUnchanged(PlacementKey.decl(node), r.revision);
        d.logger.info('placement: declaration of a node that left removed', { node });
      }
      m.unsatisfiable.set(Object.keys(decision.unsatisfiable).length);
      m.deferred.set(Object.keys(decision.deferred).length);
      const blocked = Object.entries(decision.draining).flatMap(([node, x]) =>
        x.blocked.map((b) => `${node}: ${b}`),
      );
      m.blocked.set(blocked.length);
      // A drain held back says so every tick (as a warning in the log and the audit), not once.
      if (blocked.length && (blocked.join('\n') !== lastBlocked || !sameDecision(previous, decision)))
        d.audit('placement.drain_blocked', { blocked }, 'warn');
      else if (blocked.length) d.logger.warn('placement: drain still blocked', { blocked });
      lastBlocked = blocked.join('\n');
      // A new scheduler writes once even when nothing changed: the key then carries its epoch, which fences
      // any write of its predecessor still in flight.
      // A rebalance that changed nothing is done as well.
      // (A rebalance asked for after the read stays, for the next decision.)
      const applied = async () => {
        for (const app of decision.rebalanced) {
          const r = rebalanceRevs.get(app);
          if (!r) continue;
          try {
            await deleteIfUnchanged(PlacementKey.rebalance(app), r.revision);
            d.audit('app.rebalanced', { app, by: rebalances.get(app)?.by });
          } catch (err) {
            // Applied all the same; the record goes with the next decision.
            d.logger.warn('placement: applied rebalance record not removed', { app, err });
          }
        }
      };
      wakeAt(decision.wakeAt);
      if (sameDecision(previous, decision) && !mustWrite) {
        m.decisions.inc({ result: 'unchanged' });
        await applied();
        return;
      }
      const epoch = election.epoch();
      const state: PlacementState = {
        scheduler: d.nodeId,
        epoch,
        at: d.clock.wallNow(),
        generation: (previous?.generation ?? 0) + 1,
        placements: decision.placements,
        reasons: decision.reasons,
        unsatisfiable: decision.unsatisfiable,
        nodes: decision.nodes,
        leaders: decision.leaders,
        draining: decision.draining,
        deferred: decision.deferred,
        migrated: decision.migrated,
        refused: decision.refused,
        limits,
      };
      // Only over the decision it was made from: a write in between (a deposed scheduler's late one, say)
      // makes it decide again from that, so generations never repeat or go back.
      await fenced.update(PlacementKey.state, JSON.stringify(state), stateRevision);
      await applied();
      mustWrite = false;
      m.decisions.inc({ result: 'changed' });
      for (const s of decision.started) m.migrations.inc({ cause: s.cause });
      const changes = plan(previous?.placements ?? {}, decision.schedule).changes;
      d.audit('placement.decided', {
        epoch,
        generation: state.generation,
        changes: changes.map((c) => ({ app: c.app, kind: c.kind, from: c.from, to: c.to, leader: c.leader })),
        unsatisfiable: Object.keys(decision.unsatisfiable),
        ...(decision.started.length ? { migrations: decision.started } : {}),
        ...(Object.keys(decision.deferred).length ? { deferred: decision.deferred } : {}),
        ...(decision.conflicts.length ? { conflicts: decision.conflicts } : {}),
      });
      if (decision.conflicts.length)
        d.audit(
          'placement.spec_conflict',
          {
            apps: decision.conflicts,
            detail: 'nodes declare these apps with different placement specs; the first node by id wins',
          },
          'warn',
        );
    } catch (err) {
      if (isGcError(err, ErrorCode.WriteConflict)) {
        m.decisions.inc({ result: 'conflict' });
        d.logger.info('placement decision not written: the state changed meanwhile; deciding again', { err });
        again = true;
        return;
      }
      const fencedOut = (err as { code?: string }).code === 'GC_FENCED';
      m.decisions.inc({ result: fencedOut ? 'fenced' : 'failed' });
      d.logger[fencedOut ? 'info' : 'warn']('placement decision not written', { err });
      // Try again in a second (not at once: a lasting failure must not hammer the server).
      if (!fencedOut) retry = d.clock.setTimeout(() => kick(), 1000);
    } finally {
      m.seconds.observe((d.clock.now() - t0) / 1000);
    }
  };

  // The first change after a quiet spell is decided at once; changes that follow within the debounce are
  // gathered into one decision after it (a burst makes two decisions, not one per change).
  let lastStart = Number.NEGATIVE_INFINITY;
  const debounceMs = d.debounceMs ?? 100;
  const kick = (): void => {
    if (closed || !election.isLeader()) return;
    if (timer !== undefined) return;
    const quiet = d.clock.now() - lastStart >= debounceMs && !running;
    timer = d.clock.setTimeout(
      () => {
        lastStart = d.clock.now();
        timer = undefined;
        if (running) {
          again = true;
          return;
        }
        running = run().finally(() => {
          running = undefined;
          if (again) {
            again = false;
            kick();
          }
        });
      },
      quiet ? 0 : debounceMs,
    );
  };

  const tickMs = d.tickMs ?? 2000;
  let tick: ReturnType<Clock['setTimeout']> | undefined;
  const ticking = (): void => {
    tick = d.clock.setTimeout(() => {
      kick();
      if (!closed) ticking();
    }, tickMs);
  };
  ticking();
  const offs = [
    election.on('acquired', () => {
      mustWrite = true;
      kick();
    }),
    // Only the scheduler's gauges mean anything: a node that stopped deciding shows none.
    election.on('lost', () => (m.unsatisfiable.set(0), m.blocked.set(0), m.deferred.set(0))),
    election.on('stepped-down', () => (m.unsatisfiable.set(0), m.blocked.set(0), m.deferred.set(0))),
  ];
  const watch = await d.membership.watch({ initial: false });
  void (async () => {
    for await (const _ of watch) kick();
  })().catch((err: unknown) => d.logger.warn('placement: membership watch ended', { err }));
  const stopBucket = keepWatching(
    await d.bucket.kv.watch({ key: ['decl.>', 'admin.>', 'move.>', 'rebalance.>'] }),
    () => d.bucket.kv.watch({ key: ['decl.>', 'admin.>', 'move.>', 'rebalance.>'] }),
    () => kick(),
    { clock: d.clock, logger: d.logger, what: 'placement bucket watch', fields: { bucket: d.bucket.bucket } },
  );
  return {
    leading: () => election.isLeader(),
    kick,
    async close() {
      closed = true;
      if (timer !== undefined) d.clock.clearTimeout(timer);
      if (tick !== undefined) d.clock.clearTimeout(tick);
      if (retry !== undefined) d.clock.clearTimeout(retry);
      if (wake !== undefined) d.clock.clearTimeout(wake);
      for (const off of offs) off();
      watch.stop();
      stopBucket();
      await running;
      await election.close();
    },
  };
}
