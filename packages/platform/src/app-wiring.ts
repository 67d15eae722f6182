// How an app's parts are built from its options and its platform (app.ts decides when): its RPC server, its
// election, each component's context and health checks, and the coordinator that runs the components as
// the active sequence.
import { fileEpochStore, type AppComponent, type ComponentContext, type Epoch } from '@gc/core';
import { createElection, type Election } from '@gc/election';
import {
  createActiveCoordinator,
  defaultActiveCoordinatorOptions,
  type ActiveCoordinator,
  type SequenceStep,
} from '@gc/backends';
import { createRpcServer, NotOwnerError, type RpcServer } from '@gc/rpc';
import type { Ring } from '@gc/ring';
import { join } from 'node:path';
import type { AppDeps } from './app-deps.js';
import { coordinatorAudit } from './audit.js';
import { isBackendComponent } from './components.js';
import { AppMode, AppRole, type AppOptions } from './types.js';

/** The app's RPC server: who leads, with which epoch, and (ring mode) which keys this node admits. */
export function appRpcServer(
  a: { name: string; mode: AppMode; role: () => AppRole; epoch: () => Epoch; ring: () => Ring | undefined },
  d: AppDeps,
): RpcServer {
  return createRpcServer(d.nc, {
    platform: d.names.platform,
    app: a.name,
    nodeId: d.nodeId,
    isLeader: () => a.mode === AppMode.ActivePassive && a.role() === AppRole.Active,
    epoch: () => (a.role() === AppRole.Active && a.epoch() > 0 ? a.epoch() : undefined),
    healthy: d.healthy,
    // Ring mode: a key-routed call runs only on the key's owner; until this node joined the ring it owns
    // nothing (callers retry once the ring's records name an owner).
    ...(a.mode === AppMode.Ring
      ? {
          admitKey: (key: string, method: string) => {
            const ring = a.ring();
            if (!ring) throw new NotOwnerError(a.name, method, d.nodeId, 'not-joined');
            return ring.admit(key, method);
          },
        }
      : {}),
    logger: d.logger,
    clock: d.clock,
    ...(d.registry ? { registry: d.registry } : {}),
  });
}

/** The election of an active-passive app, its epoch kept in `{dataDir}/{app}.epoch`. */
export function appElection(name: string, o: AppOptions, d: AppDeps): Promise<Election> {
  return createElection(d.nc, {
    bucket: d.names.election,
    key: 'leader',
    nodeId: d.nodeId,
    ...o.election,
    epochStore: fileEpochStore(join(d.dataDir, `${name}.epoch`)),
    clock: d.clock,
    logger: d.logger.child({ app: name }),
    ...(d.registry ? { registry: d.registry } : {}),
  });
}

/** What every component of this app gets when it starts. */
export function componentContext(
  c: AppComponent,
  a: {
    name: string;
    epoch: () => Epoch;
    election: () => Election | undefined;
    stepDown: () => Promise<void>;
  },
  d: AppDeps,
): ComponentContext {
  return {
    platform: d.names.platform,
    app: a.name,
    nodeId: d.nodeId,
    nc: d.nc,
    dataDir: d.dataDir,
    clock: d.clock,
    logger: d.logger.child({ component: c.name }),
    registry: d.registry,
    audit: (type, data, severity) => d.audit(type, data, severity),
    stepDown: (reason) => {
      d.logger.warn('component hands leadership on', { component: c.name, reason });
      void a
        .stepDown()
        .catch((err: unknown) =>
          d.logger.error('step-down asked by a component failed', { component: c.name, err }),
        );
    },
    leaderEpoch: () => (a.epoch() > 0 && a.election()?.isLeader() ? a.epoch() : undefined),
  };
}

/**
 * Starts the components in order (standby duties), adding each to `started` once it started and
 * registering its health check (`<component>-<app>`, refreshed before each check).
 */
export async function startComponents(
  app: string,
  components: AppComponent[],
  started: AppComponent[],
  context: (c: AppComponent) => ComponentContext,
  d: AppDeps,
): Promise<void> {
  for (const c of components) {
    await c.start?.(context(c));
    started.push(c);
    const health = c.health?.bind(c);
    if (health)
      d.registerHealth(`${c.name}-${app}`, async () => {
        await c.refresh?.();
        return health();
      });
  }
}

/**
 * The coordinator that runs the components' steps as the active sequence: each step fenced by the epoch,
 * timed, audited, and undone in reverse when a later one fails. A backend that fails makes the node step down.
 */
export function appCoordinator(
  a: { name: string; mode: AppMode; components: AppComponent[]; stepDown: () => Promise<void> },
  d: AppDeps,
): ActiveCoordinator {
  const log = d.logger;
  const sequence: SequenceStep[] = a.components.map((c) =>
    isBackendComponent(c)
      ? {
          name: c.name,
          backend: c.backend,
          keepRunning: c.keepRunning,
          ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
        }
      : {
          name: c.name,
          ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
          activate: (t) => c.activate?.(t) ?? Promise.resolve(),
          deactivate: (t) => c.deactivate?.(t) ?? Promise.resolve(),
        },
  );
  return createActiveCoordinator({
    name: a.name,
    steps: {},
    sequence,
    timeouts: defaultActiveCoordinatorOptions().timeouts,
    // Pool and ring apps activate with epoch 0 on every node: nothing to fence (a ring fences per partition).
    ...(a.mode !== AppMode.ActivePassive
      ? { fence: { highest: () => 0, observe: () => false, admit: () => true, check: () => undefined } }
      : {}),
    clock: d.clock,
    logger: log,
    ...(d.registry ? { registry: d.registry } : {}),
    onEvent: (e) => {
      const rec = coordinatorAudit(e);
      if (rec) d.audit(rec.type, rec.data);
      if (e.type === 'backend-failed') {
        // A leader whose service cannot be kept healthy hands over to a standby.
        void a
          .stepDown()
          .catch((err: unknown) => log.error('step-down after backend failure failed', { err }));
      }
    },
  });
}
