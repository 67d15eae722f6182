// Placement on one node, put together: the bucket, this node's agent and its scheduler candidate; and the
// operator's handle on it (`platform.placement()`).
import type { NatsConnection } from '@nats-io/nats-core';
import type { Clock, Logger } from '@gc/core';
import type { Membership } from '@gc/membership';
import type { Registry } from 'prom-client';
import { startPlacementAgent, type PlacedApp, type PlacementAgent } from './agent.js';
import { openPlacementBucket, type PlacementBucket } from './bucket.js';
import { MoveRefusedError } from './errors.js';
import {
  PlacementKey,
  nodeLabelsSchema,
  parseRecord,
  type AppMove,
  type AppRebalance,
  type NodeAdmin,
  type NodeLabels,
  type PlacementState,
} from './records.js';
import { ConfigError, isCasConflict, validateAppName, validateNodeId } from '@gc/core';
import { mergeLabelChanges, type LabelChanges } from './labels.js';
import { planOperation, type OperationPlan, type PlacementOperation } from './plan-op.js';
import { UnknownNodeError } from '@gc/placement';
import { startScheduler, type Scheduler } from './scheduler.js';
import type { MigrationLimits } from './gate.js';

/** What operators do with placement (`platform.placement()`, `gc node …`, `gc explain`). */
export interface PlacementControl {
  /** The scheduler's last decision (where each app runs, why, what cannot be placed, drains). */
  state(): Promise<PlacementState | undefined>;
  /** Cordons and drains in force, by node. */
  holds(): Promise<Map<string, NodeAdmin>>;
  /** The node takes no new apps; those it runs stay. Throws `UnknownNodeError` for a node that is not live. */
  cordon(nodeId: string, reason?: string): Promise<void>;
  /** Lifts a cordon or a drain. */
  uncordon(nodeId: string): Promise<void>;
  /**
   * Moves every app with placement off the node (switchovers wait for a ready standby; disruption budgets
   * are kept until `deadlineMs`, default 1 h, then the moves are forced). The node stays cordoned.
   */
  drain(nodeId: string, o?: { deadlineMs?: number; reason?: string }): Promise<void>;
  /**
   * Where `app` is placed (the last decision), its preferred leader, where it is active now (as the nodes
   * declare it), and why it cannot be placed when it cannot.
   */
  where(app: string): Promise<AppWhere>;
  /**
   * Hands an active-passive app's lead to `to` (a switchover with the data: the target's replica takes over
   * at the stream's tip). Refused with `MoveRefusedError` when the app is not placed, `to` is not live, is
   * cordoned, is not one of the app's placed nodes (the error says which constraint), or its standby is
   * not caught up — unless `force` (then the promotion waits for the replica to catch up). Resolves once
   * the move is recorded; watch {@link PlacementControl.where} for the app to be active on `to`.
   */
  move(app: string, to: string, o?: { force?: boolean; reason?: string }): Promise<void>;
  /**
   * Changes a live node's labels (`key → value` sets, `key → null` removes; `reset` drops every earlier
   * change first). Kept in the placement bucket and applied by the node over its configured labels (again
   * after a restart); apps with placement follow (their maintenance windows and cooldown permitting).
   * Returns the node's recorded changes (undefined after a reset with no changes).
   */
  label(nodeId: string, changes: LabelChanges, o?: { reset?: boolean }): Promise<NodeLabelsResult>;
  /**
   * Places `app` afresh at the next decision, ignoring where it runs (apps otherwise stay where they run
   * unless a clearly better node appears: hysteresis). Its maintenance windows and the migration slots
   * still apply; its cooldown does not.
   */
  rebalance(app: string, o?: { reason?: string }): Promise<void>;
  /** What `operation` would do now (moves, disruption, switchovers waiting for a standby), writing nothing. */
  plan(operation: PlacementOperation): Promise<OperationPlan>;
}

/** What {@link PlacementControl.label} recorded. */
export interface NodeLabelsResult {
  node: string;
  /** The operator's changes in force for the node (undefined: none, the configured labels apply). */
  changes: NodeLabels | undefined;
}

/** Where an app runs, as {@link PlacementControl.where} tells it. */
export interface AppWhere {
  app: string;
  /** Nodes the last decision placed it on (empty when it could not be placed). */
  placed: string[];
  /** Active-passive: the preferred leader. */
  leader?: string;
  /** Nodes where it is active now. */
  active: string[];
  /** Why it cannot be placed, when it cannot. */
  unsatisfiable?: string;
  /** Node → why (see `@gc/placement`'s `NodeReason`). */
  reasons: Record<string, Record<string, unknown>>;
  /** Generation of the decision (0: none yet). */
  generation: number;
}

/** This node's running placement. */
export interface PlacementRuntime {
  readonly bucket: PlacementBucket;
  readonly agent: PlacementAgent;
  readonly scheduler: Scheduler;
  close(): Promise<void>;
}

/** Opens the bucket and starts the agent and the scheduler candidate. */
export async function startPlacement(d: {
  nc: NatsConnection;
  platform: string;
  nodeId: string;
  dataDir: string;
  membership: Membership;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  audit: (type: string, data: Record<string, unknown>, severity?: 'info' | 'warn' | 'error') => void;
  apps: () => PlacedApp[];
  limits?: MigrationLimits;
}): Promise<PlacementRuntime> {
  const bucket = await openPlacementBucket(d.nc, d.platform);
  const logger = d.logger.child({ component: 'placement' });
  const agent = await startPlacementAgent({
    bucket,
    nodeId: d.nodeId,
    dataDir: d.dataDir,
    clock: d.clock,
    logger,
    apps: d.apps,
  });
  let scheduler: Scheduler;
  try {
    scheduler = await startScheduler({ ...d, bucket, logger });
  } catch (err) {
    await agent.close(); // not half started: no declaration left for a node that cannot decide or follow
    throw err;
  }
  return {
    bucket,
    agent,
    scheduler,
    async close() {
      try {
        await scheduler.close();
      } finally {
        await agent.close();
      }
    },
  };
}

/** The operator's handle over `bucket`; `by` names who acts (audited), `members` the live node ids. */
export function placementControl(
  bucket: () => Promise<PlacementBucket>,
  o: {
    by: string;
    members: () => Promise<Array<{ nodeId: string; labels: Record<string, string> }>>;
    /** Records an operation (awaited: a CLI exits right after). */
    audit: (type: string, data: Record<string, unknown>) => void | Promise<void>;
  },
): PlacementControl {
  const ids = async () => (await o.members()).map((m) => m.nodeId);
  const known = async (nodeId: string) => {
    validateNodeId(nodeId);
    const live = await ids();
    if (!live.includes(nodeId)) throw new UnknownNodeError(nodeId, [...live].sort());
  };
  /** Throws `MoveRefusedError` / `UnknownNodeError` unless `app`'s lead may move to `to` now. */
  const checkMove = async (app: string, to: string, force: boolean) => {
    validateAppName(app);
    validateNodeId(to);
    const b = await bucket();
    const [state, decls, admins, live] = await Promise.all([
      b.state(),
      b.declarations(),
      b.admins(),
      o.members(),
    ]);
    if (!live.some((m) => m.nodeId === to)) throw new UnknownNodeError(to, live.map((m) => m.nodeId).sort());
    const p = state?.placements[app];
    const spec = [...decls.values()].find((d) => d.apps[app])?.apps[app];
    if (!spec) throw new MoveRefusedError(app, to, 'no live node declares the app with placement');
    if (spec.mode !== 'active-passive')
      throw new MoveRefusedError(
        app,
        to,
        `it is a ${spec.mode} app: every placed node runs it; change its constraints or drain a node instead`,
      );
    if (admins.get(to)?.cordoned)
      throw new MoveRefusedError(app, to, `${to} is cordoned (${admins.get(to)!.reason}); uncordon it first`);
    if (!p)
      throw new MoveRefusedError(app, to, state?.unsatisfiable[app]?.message ?? 'the app is not placed yet');
    if (!p.nodes.includes(to)) {
      const why = state.reasons[app]?.[to] as { constraint?: string; detail?: string } | undefined;
      throw new MoveRefusedError(
        app,
        to,
        why?.detail
          ? `${to} may not run it: ${why.constraint ? `${why.constraint}: ` : ''}${why.detail}`
          : `${to} is not one of the nodes the app is placed on (${p.nodes.join(', ')})`,
      );
    }
    if (!force && !decls.get(to)?.active?.includes(app) && !decls.get(to)?.ready?.includes(app))
      throw new MoveRefusedError(
        app,
        to,
        `the standby on ${to} is not ready to take over (not contending yet, or its replica is not caught up); wait, or force the move (the new leader then catches up before it serves)`,
      );
  };
  return {
    state: async () => (await bucket()).state(),
    holds: async () => (await bucket()).admins(),
    async cordon(nodeId, reason = 'cordoned by an operator') {
      await (await bucket()).cordon(nodeId, { reason, by: o.by, known: await ids() });
      await o.audit('node.cordoned', { node: nodeId, reason });
    },
    async uncordon(nodeId) {
      await (await bucket()).uncordon(nodeId, { by: o.by });
      await o.audit('node.uncordoned', { node: nodeId });
    },
    async drain(nodeId, d = {}) {
      const reason = d.reason ?? 'drained by an operator';
      await (
        await bucket()
      ).drain(nodeId, {
        reason,
        by: o.by,
        known: await ids(),
        ...(d.deadlineMs !== undefined ? { deadlineMs: d.deadlineMs } : {}),
      });
      await o.audit('node.drain', {
        node: nodeId,
        reason,
        ...(d.deadlineMs ? { deadlineMs: d.deadlineMs } : {}),
      });
    },
    async where(app) {
      validateAppName(app);
      const b = await bucket();
      const [state, decls] = await Promise.all([b.state(), b.declarations()]);
      const p = state?.placements[app];
      return {
        app,
        placed: p ? [...p.nodes] : [],
        ...(p?.leader !== undefined ? { leader: p.leader } : {}),
        active: [...decls]
          .filter(([, d]) => d.active?.includes(app))
          .map(([n]) => n)
          .sort(),
        ...(state?.unsatisfiable[app] ? { unsatisfiable: state.unsatisfiable[app].message } : {}),
        reasons: state?.reasons[app] ?? {},
        generation: state?.generation ?? 0,
      };
    },
    async move(app, to, m = {}) {
      await checkMove(app, to, m.force === true);
      const rec: AppMove = { to, reason: m.reason ?? 'moved by an operator', by: o.by, at: Date.now() };
      await (await bucket()).kv.put(PlacementKey.move(app), JSON.stringify(rec));
      await o.audit('app.move', { app, to, reason: rec.reason, force: m.force === true });
    },

    async label(nodeId, changes, l = {}) {
      await known(nodeId);
      const b = await bucket();
      const key = PlacementKey.labels(nodeId);
      if (l.reset && Object.keys(changes).length === 0) {
        await b.kv.delete(key);
        await o.audit('node.labelled', { node: nodeId, reset: true });
        return { node: nodeId, changes: undefined };
      }
      if (Object.keys(changes).length === 0)
        throw new ConfigError('labels', 'no label to change: give key=value to set or key- to remove');
      mergeLabelChanges(undefined, changes, o.by, 0); // refuses bad names before anything is read
      // Read, merge, write only if nobody wrote in between (two operators labelling one node at once both
      // keep their change): a lost compare-and-set reads again.
      for (let attempt = 1; ; attempt++) {
        const held = await b.kv.get(key);
        const existing =
          !l.reset && held?.operation === 'PUT'
            ? parseRecord<NodeLabels>(nodeLabelsSchema, held.value)
            : undefined;
        const rec = mergeLabelChanges(existing, changes, o.by, Date.now());
        try {
          if (held?.operation === 'PUT') await b.kv.update(key, JSON.stringify(rec), held.revision);
          else await b.kv.create(key, JSON.stringify(rec));
        } catch (err) {
          if (isCasConflict(err) && attempt < 10) continue;
          throw err;
        }
        await o.audit('node.labelled', { node: nodeId, changes, ...(l.reset ? { reset: true } : {}) });
        return { node: nodeId, changes: rec };
      }
    },
    async rebalance(app, r = {}) {
      validateAppName(app);
      const b = await bucket();
      const decls = await b.declarations();
      if (![...decls.values()].some((d) => d.apps[app]))
        throw new ConfigError('app', `no live node declares app "${app}" with placement`);
      const rec: AppRebalance = { reason: r.reason ?? 'rebalanced by an operator', by: o.by, at: Date.now() };
      await b.kv.put(PlacementKey.rebalance(app), JSON.stringify(rec));
      await o.audit('app.rebalance', { app, reason: rec.reason });
    },
    async plan(operation) {
      if ('node' in operation) await known(operation.node);
      if (operation.op === 'move') await checkMove(operation.app, operation.to, true);
      if ('app' in operation) validateAppName(operation.app);
      if (operation.op === 'label') mergeLabelChanges(undefined, operation.changes, o.by, 0); // validates
      const b = await bucket();
      const [members, declarations, admins, moves, rebalances, previous] = await Promise.all([
        o.members(),
        b.declarations(),
        b.admins(),
        b.moves(),
        b.rebalances(),
        b.state(),
      ]);
      return planOperation(
        { members, declarations, admins, moves, rebalances, previous, now: Date.now() },
        operation,
        o.by,
      );
    },
  };
}
