import { createLogger, type Logger } from '@gc/core';
import {
  createAdminClient,
  createPlatform,
  openPlacementBucket,
  type DisruptionBudget,
  type Platform,
} from '@gc/platform';
import type { RouteHandler } from '@gc/health';
import { createDashboard, type Dashboard } from './dashboard/server.js';
import { openAppRing } from './ring-open.js';
import type { AppConfig, GcConfig } from './config.js';

/** A node started from a config file: what `gc run` runs. */
export interface RunningNode {
  readonly platform: Platform;
  /** Applies a new config: adds, removes and restarts changed apps. Returns what changed and what needs a restart. */
  reload(
    next: GcConfig,
  ): Promise<{ added: string[]; removed: string[]; restarted: string[]; needsRestart: string[] }>;
  /** Steps down, stops apps in reverse order, closes the connection. */
  close(): Promise<void>;
}

function appOptions(spec: AppConfig) {
  return {
    mode: spec.mode,
    election: spec.election,
    kvReplicas: spec.kvReplicas,
    ...given(spec, [
      'hookTimeoutMs',
      'recoveryBudgetMs',
      'backend',
      'backendRuns',
      'vip',
      'sqlite',
      'phaseTimeouts',
      'ring',
      'placement',
      'migrate',
    ]),
    // The schema checked the percentage form (`50%`), which the type cannot say.
    ...(spec.budget ? { budget: spec.budget as DisruptionBudget } : {}),
  };
}

/** The settings `keys` of `spec` that the config gives (leaving out absent ones, and 0 or ''). */
function given<T extends object, K extends keyof T>(spec: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (spec[k]) out[k] = spec[k];
  return out;
}

/** Starts a node from a validated config. */
export async function startNode(config: GcConfig, logger?: Logger): Promise<RunningNode> {
  // The dashboard needs the platform's connection, which exists only once the platform does: its
  // routes resolve it lazily.
  const holder: { dashboard?: Dashboard } = {};
  const lazy =
    (path: string): RouteHandler =>
    (req, res) =>
      holder.dashboard ? holder.dashboard.routes[path]!(req, res) : void res.writeHead(503).end('starting');
  const log =
    logger ??
    createLogger({ level: config.log.level, ...(config.log.format ? { format: config.log.format } : {}) });
  const platform = await createPlatform({
    name: config.platform,
    nodeId: config.node.id,
    labels: config.node.labels,
    ...(config.migrations ? { migrations: config.migrations } : {}),
    nats: {
      servers: config.nats.servers,
      ...(config.nats.credentials ? { credentials: config.nats.credentials } : {}),
      ...(config.nats.tls ? { tls: config.nats.tls } : {}),
    },
    http: config.http.enabled
      ? {
          host: config.http.host,
          port: config.http.port,
          routes: {
            '/': lazy('/'),
            '/api/cluster': lazy('/api/cluster'),
            '/api/stream': lazy('/api/stream'),
          },
        }
      : false,
    ...(config.dataDir ? { dataDir: config.dataDir } : {}),
    logger: log,
    // The daemon is gc's own process: keep its heap compact while idle.
    idleGc: true,
  });
  const dashboard = (holder.dashboard = createDashboard({
    platform: config.platform,
    nodeId: config.node.id,
    admin: createAdminClient(platform.nc, config.platform),
    audit: platform.audit,
    ring: (app) => openAppRing(platform.nc, config.platform, app),
    placement: () => openPlacementBucket(platform.nc, config.platform, { create: false }),
  }));
  let current = config;
  for (const [name, spec] of Object.entries(config.apps)) platform.app(name, appOptions(spec));
  try {
    await platform.start();
  } catch (err) {
    dashboard.close();
    await platform.close();
    throw err;
  }
  return {
    platform,
    async reload(next) {
      const needsRestart: string[] = [];
      if (next.platform !== current.platform) needsRestart.push('platform');
      if (next.node.id !== current.node.id) needsRestart.push('node.id');
      if (JSON.stringify(next.nats) !== JSON.stringify(current.nats)) needsRestart.push('nats');
      if (JSON.stringify(next.http) !== JSON.stringify(current.http)) needsRestart.push('http');
      if (needsRestart.length) {
        log.warn('config changes that need a restart were not applied', { fields: needsRestart });
      }
      if (JSON.stringify(next.node.labels) !== JSON.stringify(current.node.labels))
        await platform.setLabels(next.node.labels);
      const added: string[] = [];
      const removed: string[] = [];
      const restarted: string[] = [];
      for (const name of Object.keys(current.apps)) {
        if (!(name in next.apps)) {
          await platform.removeApp(name);
          removed.push(name);
        }
      }
      for (const [name, spec] of Object.entries(next.apps)) {
        const old = current.apps[name];
        if (!old) {
          await platform.app(name, appOptions(spec)).start();
          added.push(name);
        } else if (JSON.stringify(old) !== JSON.stringify(spec)) {
          await platform.removeApp(name);
          await platform.app(name, appOptions(spec)).start();
          restarted.push(name);
        }
      }
      current = {
        ...next,
        platform: current.platform,
        node: { ...next.node, id: current.node.id },
        nats: current.nats,
        http: current.http,
      };
      log.info('config reloaded', { added, removed, restarted });
      return { added, removed, restarted, needsRestart };
    },
    async close() {
      dashboard.close();
      await platform.close();
    },
  };
}
