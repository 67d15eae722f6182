// Placement on one node, put together: the bucket, this node's agent and its scheduler candidate; and the
// operator's handle on it (`platform.placement()`).
import type { NatsConnection } from '@nats-io/nats-core';
import type { Clock, Logger } from '@gc/core';
import type { Membership } from '@gc/membership';
import type { Registry } from 'prom-client';
import { startPlacementAgent, type PlacedApp, type PlacementAgent } from './agent.js';
import { openPlacementBucket, type PlacementBucket } from './bucket.js';
import { MoveRefusedError } from './errors.js';
import { PlacementKey, type AppMove, type NodeAdmin, type PlacementState } from './records.js';
import { validateAppName, validateNodeId } from '@gc/core';
import { UnknownNodeError } from '@gc/placement';
import { startScheduler, type Scheduler } from './scheduler.js';

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
    members: () => Promise<string[]>;
    /** Records an operation (awaited: a CLI exits right after). */
    audit: (type: string, data: Record<string, unknown>) => void | Promise<void>;
  },
): PlacementControl {
  return {
    state: async () => (await bucket()).state(),
    holds: async () => (await bucket()).admins(),
    async cordon(nodeId, reason = 'cordoned by an operator') {
      await (await bucket()).cordon(nodeId, { reason, by: o.by, known: await o.members() });
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
        known: await o.members(),
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
      validateAppName(app);
      validateNodeId(to);
      const b = await bucket();
      const [state, decls, admins, live] = await Promise.all([
        b.state(),
        b.declarations(),
        b.admins(),
        o.members(),
      ]);
      if (!live.includes(to)) throw new UnknownNodeError(to, [...live].sort());
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
        throw new MoveRefusedError(
          app,
          to,
          `${to} is cordoned (${admins.get(to)!.reason}); uncordon it first`,
        );
      if (!p)
        throw new MoveRefusedError(
          app,
          to,
          state?.unsatisfiable[app]?.message ?? 'the app is not placed yet',
        );
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
      if (!m.force && !decls.get(to)?.active?.includes(app) && !decls.get(to)?.ready?.includes(app))
        throw new MoveRefusedError(
          app,
          to,
          `the standby on ${to} is not ready to take over (not contending yet, or its replica is not caught up); wait, or force the move (the new leader then catches up before it serves)`,
        );
      const rec: AppMove = { to, reason: m.reason ?? 'moved by an operator', by: o.by, at: Date.now() };
      await b.kv.put(PlacementKey.move(app), JSON.stringify(rec));
      await o.audit('app.move', { app, to, reason: rec.reason, force: m.force === true });
    },
  };
}
