// The operator's control API over @gc/rpc: the client (`gc status`, `gc app stepdown`, drills) and what a
// node serves for it.
import {
  ConfigError,
  GcError,
  isGcError,
  validateAppName,
  validateNodeId,
  type Clock,
  type Closable,
  type Logger,
} from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  createRpcClient,
  createRpcServer,
  HandlerError,
  PLATFORM_RPC_APP,
  RpcErrorCode,
  type CallTarget,
  type HandleOptions,
  type Handler,
  type RpcServer,
} from '@gc/rpc';
import type { SnapshotInfo } from '@gc/snapshot';
import type { Registry } from 'prom-client';
import type { PlatformStatus } from './types.js';

/** Error codes of the admin API. */
export const AdminErrorCode = {
  NoLeader: 'GC_ADMIN_NO_LEADER',
  Failed: 'GC_ADMIN_FAILED',
} as const;

/**
 * The control API's RPC methods (a public contract). `status` is served by every node on the platform's own
 * RPC scope (`{platform}.gc.rpc.status.node.{nodeId}`); the others by each app's RPC server, to its leader
 * (`{platform}.{app}.rpc.gc-stepdown.leader`) or to one node (`gc-recover`). Method names starting with
 * {@link CONTROL_METHOD_PREFIX} are reserved: `app.handle()` refuses them.
 */
export const ControlMethod = {
  /** Every node answers with its {@link PlatformStatus}. */
  Status: 'status',
  /** The app's leader steps down and answers with a {@link StepDownResult}. */
  StepDown: 'gc-stepdown',
  /** The app's leader takes a snapshot of its database now and answers with it. */
  Snapshot: 'gc-snapshot',
  /** The named node allows its next promotion of the app to publish its copy unproven (`gc app recover`). */
  Recover: 'gc-recover',
  /** The app's leader performs a failover drill's fault on itself and answers when (see `runDrill`). */
  Drill: 'gc-drill',
} as const;

/**
 * The control handlers' own time limit: long, so that the caller's timeout (`--timeout`, a drill's) is the
 * one that counts — a handler cut short by a shorter limit would still be running while its caller is
 * told it failed.
 */
const CONTROL_HANDLER_MS = 30 * 60_000;

/** Prefix of the control methods on an app's RPC, reserved for the platform. */
export const CONTROL_METHOD_PREFIX = 'gc-';

/** Result of a remote step-down. */
export interface StepDownResult {
  app: string;
  /** The node that stepped down. */
  node: string;
  /** The epoch it held. */
  epoch: number;
}

/** Operator API over NATS: what `gc status`, `gc node`, `gc app stepdown` use. */
export interface AdminClient extends Closable {
  /** Asks every node for its status; collects answers for up to `waitMs` (default 750). Sorted by node id. */
  nodes(waitMs?: number): Promise<PlatformStatus[]>;
  /** Makes the current leader of `app` step down; rejects with code `GC_ADMIN_NO_LEADER` when none answers. */
  stepDown(app: string, timeoutMs?: number): Promise<StepDownResult>;
  /** Makes the current leader of `app` take a snapshot of its database now. */
  snapshot(app: string, timeoutMs?: number): Promise<SnapshotInfo & { node: string }>;
  /**
   * Lets `node` publish its copy of `app`'s database the next time it becomes leader, although the copy is
   * not proven to be the history's tip — the way out when the WAL stream and every snapshot are gone and
   * no node can prove it is current. `reason` is audited. Rejects with `GC_ADMIN_NO_LEADER` when the node
   * does not answer (not running, or it does not run the app with a database).
   */
  recover(app: string, node: string, reason: string, timeoutMs?: number): Promise<RecoverResult>;
  /**
   * Makes the leader of `app` perform a drill's fault on itself (`failover`: behave as if its process died;
   * `stepdown`: hand over). Resolves with the node, its epoch and the wall time of the fault. Prefer
   * `runDrill`, which also measures the recovery.
   */
  drill(app: string, kind: 'failover' | 'stepdown', timeoutMs?: number): Promise<DrillAck>;
  /** Refuses new calls and waits for the ones in flight. Idempotent. */
  close(): Promise<void>;
}

/** What a leader answers to a drill request. */
export interface DrillAck {
  app: string;
  node: string;
  epoch: number;
  /** Wall-clock ms when the fault was injected. */
  atMs: number;
  /** The replicated database's last acknowledged transaction at the fault (apps with a database). */
  txid?: number;
  /** Its checksum. */
  checksum?: string;
}

/** Result of {@link AdminClient.recover}. */
export interface RecoverResult {
  app: string;
  node: string;
  /** The node's replication state when it accepted (txid of its copy, why it was refused before). */
  replication: { txid: number; state: string; reason?: string } | undefined;
}

/**
 * Creates the operator client for `platform` on an existing connection: calls over `@gc/rpc` (typed errors,
 * time limits, trace context), never retried (a step-down retried after a lost reply could step down the
 * next leader) and with no circuit breaker (an operator asks again when they choose). Close it when done.
 *
 * @example
 * const admin = createAdminClient(nc, 'prod');
 * for (const n of await admin.nodes()) console.log(n.nodeId, n.apps.map((a) => `${a.name}:${a.role}`));
 * await admin.close();
 */
export function createAdminClient(nc: NatsConnection, platform: string): AdminClient {
  const rpc = createRpcClient(nc, {
    platform,
    caller: 'gc-admin',
    retry: { retries: 0 },
    circuit: { consecutiveFailures: Number.MAX_SAFE_INTEGER },
  });
  /** Calls `method` of `app`; `what` names the operation in errors, `nobody` says what no answer means. */
  const ask = async <T>(c: {
    app: string;
    method: string;
    payload?: unknown;
    to: CallTarget;
    timeoutMs: number;
    what: string;
    nobody: string;
  }): Promise<T> => {
    const { app, what, nobody } = c;
    try {
      return await rpc.api(app).call<T>(c.method, c.payload, { to: c.to, timeoutMs: c.timeoutMs });
    } catch (err) {
      if (err instanceof HandlerError)
        throw new GcError(AdminErrorCode.Failed, `${what} of ${app} failed: ${err.remoteMessage}`, {
          cause: err,
        });
      if (isGcError(err, RpcErrorCode.UnknownMethod))
        throw new GcError(
          AdminErrorCode.Failed,
          `${what} of ${app}: the node does not serve gc's control API (a gc older than this client? upgrade the nodes and the CLI together)`,
          { cause: err },
        );
      // Nobody serves the call (no leader, node absent), or nobody answered within the caller's time (the
      // control handlers have no shorter limit of their own).
      if (
        isGcError(err, RpcErrorCode.NoInstance) ||
        isGcError(err, RpcErrorCode.NotLeader) ||
        isGcError(err, RpcErrorCode.Timeout)
      )
        throw new GcError(AdminErrorCode.NoLeader, `${nobody} (${(err as Error).message})`, { cause: err });
      throw new GcError(AdminErrorCode.Failed, `${what} of ${app} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  return {
    async nodes(waitMs = 750) {
      // Every running node serves the platform scope whatever its health (its status says how it is): the
      // presence answers name them all; then each is asked for its status.
      const lookupMs = Math.max(50, Math.round(waitMs / 2));
      const api = rpc.api(PLATFORM_RPC_APP);
      const ids = await api.instances({ waitMs: lookupMs });
      const answers = await Promise.all(
        ids.map((node) =>
          api
            .call<PlatformStatus>(ControlMethod.Status, undefined, {
              to: { node },
              timeoutMs: Math.max(50, waitMs - lookupMs),
            })
            // A node that cannot build its status in time is left out, as one that does not answer.
            .catch(() => undefined),
        ),
      );
      return answers
        .filter((a): a is PlatformStatus => a !== undefined && typeof a?.nodeId === 'string')
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    },
    stepDown(app, timeoutMs = 5000) {
      validateAppName(app);
      return ask<StepDownResult>({
        app,
        method: ControlMethod.StepDown,
        to: 'leader',
        timeoutMs,
        what: 'step-down',
        nobody: `no node is the leader of app ${app}`,
      });
    },
    recover(app, node, reason, timeoutMs = 5000) {
      validateAppName(app);
      validateNodeId(node);
      return ask<RecoverResult>({
        app,
        method: ControlMethod.Recover,
        payload: { reason },
        to: { node },
        timeoutMs,
        what: `recover on ${node}`,
        nobody: `node ${node} did not answer for app ${app} within ${timeoutMs} ms (is it running the app with a sqlite database?)`,
      });
    },
    drill(app, kind, timeoutMs = 30_000) {
      validateAppName(app);
      return ask<DrillAck>({
        app,
        method: ControlMethod.Drill,
        payload: { kind },
        to: 'leader',
        timeoutMs,
        what: 'drill',
        nobody: `no node is the leader of app ${app} (nobody answered the drill)`,
      });
    },
    snapshot(app, timeoutMs = 120_000) {
      validateAppName(app);
      return ask<SnapshotInfo & { node: string }>({
        app,
        method: ControlMethod.Snapshot,
        to: 'leader',
        timeoutMs,
        what: 'snapshot',
        nobody: `no node is the leader of app ${app}`,
      });
    },
    close: () => rpc.close(),
    closed: () => rpc.closed(),
    [Symbol.asyncDispose]: () => rpc.close(),
  };
}

/** What a node does for the control API (see {@link serveControl}). */
export interface ControlTarget {
  nodeId: string;
  status(): Promise<PlatformStatus>;
}

/** What an app's leader or node does for the control API (see {@link appControlHandlers}). */
export interface AppControlTarget {
  stepDown(): Promise<StepDownResult>;
  snapshot(): Promise<SnapshotInfo & { node: string }>;
  recover(reason: string): Promise<RecoverResult>;
  drill(kind: 'failover' | 'stepdown'): Promise<DrillAck>;
}

/** Serves the platform scope's control methods of one node; close the server to stop. */
export function serveControl(
  nc: NatsConnection,
  platform: string,
  node: ControlTarget,
  o: { logger?: Logger; clock?: Clock; registry?: Registry } = {},
): RpcServer {
  const server = createRpcServer(nc, {
    platform,
    app: PLATFORM_RPC_APP,
    nodeId: node.nodeId,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.clock ? { clock: o.clock } : {}),
    ...(o.registry ? { registry: o.registry } : {}),
  });
  server.handle(ControlMethod.Status, () => node.status());
  return server;
}

/**
 * The control methods of one app, to register on its RPC server: the leader's (`gc-stepdown`,
 * `gc-snapshot`, `gc-drill`, refused by any node that is not the active leader any more) and `gc-recover`.
 */
export function appControlHandlers(
  app: AppControlTarget,
): Array<{ method: string; fn: Handler; opts?: HandleOptions }> {
  const text = (v: unknown, field: string) => {
    const x = (v as Record<string, unknown> | undefined)?.[field];
    return typeof x === 'string' ? x : '';
  };
  return [
    { method: ControlMethod.StepDown, fn: () => app.stepDown(), opts: { timeoutMs: CONTROL_HANDLER_MS } },
    { method: ControlMethod.Snapshot, fn: () => app.snapshot(), opts: { timeoutMs: CONTROL_HANDLER_MS } },
    {
      method: ControlMethod.Drill,
      fn: (payload) => {
        const kind = text(payload, 'kind');
        if (kind !== 'failover' && kind !== 'stepdown')
          throw new ConfigError('kind', `unknown drill ${JSON.stringify(kind)}: use failover or stepdown`);
        return app.drill(kind);
      },
      opts: { timeoutMs: CONTROL_HANDLER_MS },
    },
    {
      method: ControlMethod.Recover,
      fn: (payload) => {
        const reason = text(payload, 'reason');
        if (!reason.trim())
          throw new ConfigError('reason', 'a reason is required (it goes to the audit trail)');
        return app.recover(reason);
      },
    },
  ];
}
