// The control API's per-app operations on this node (gc-stepdown, gc-snapshot, gc-drill, gc-recover): what
// each checks and does with the app. admin.ts serves them as control methods.
import { ConfigError } from '@gc/core';
import { NotLeaderError } from '@gc/rpc';
import type { AppControlTarget } from './admin.js';
import type { AppImpl } from './app.js';
import { AppMode } from './types.js';

/**
 * What the control API does on node `nodeId` for `app` (see admin.ts). `audit` records an event of the app
 * (a drill's start).
 */
export function appControl(
  app: AppImpl,
  nodeId: string,
  audit: (type: string, data: Record<string, unknown>) => void,
): AppControlTarget {
  const name = app.name;
  const leader = (method: string) => {
    if (!app.isActive() || app.mode !== AppMode.ActivePassive)
      throw new NotLeaderError(name, method, `node ${nodeId} is not the active leader`);
  };
  const noDatabase = () =>
    new ConfigError('sqlite', `app ${name} has no replicated sqlite database on node ${nodeId}`);
  return {
    stepDown: async () => {
      leader('gc-stepdown');
      const epoch = app.epoch();
      await app.stepDown();
      return { app: name, node: nodeId, epoch };
    },
    snapshot: async () => {
      leader('gc-snapshot');
      if (!app.sqlite()) throw noDatabase();
      return { ...(await app.snapshot()), node: nodeId };
    },
    drill: async (kind) => {
      leader('gc-drill');
      const epoch = app.epoch();
      const atMs = Date.now();
      audit('drill.started', { kind, epoch });
      let data = app.sqlite() ? app.status().replication : undefined;
      if (kind === 'stepdown') await app.stepDown();
      else {
        const synced = await app.simulateCrash();
        if (synced) data = { ...data!, ...synced };
      }
      return {
        app: name,
        node: nodeId,
        epoch,
        atMs,
        ...(data ? { txid: data.txid, ...(data.checksum ? { checksum: data.checksum } : {}) } : {}),
      };
    },
    recover: (reason) => {
      if (!app.sqlite()) return Promise.reject(noDatabase());
      app.allowUnprovenPublish(reason);
      const r = app.status().replication;
      return Promise.resolve({
        app: name,
        node: nodeId,
        replication: r
          ? { txid: r.txid, state: r.state, ...(r.reason ? { reason: r.reason } : {}) }
          : undefined,
      });
    },
  };
}
