// The `gc run` config file of a `gc dev` node: the example apps (orders, workers) and the YAML written
// for them with the `yaml` library. Used by startDevCluster (dev.ts).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Document, isMap, type YAMLMap } from 'yaml';

/** Where the example service of `gc dev` lives. */
const servicePath = (): string => fileURLToPath(new URL('../dev/orders-service.mjs', import.meta.url));

/** The example apps `gc dev` runs on a node: `orders` with its database and HTTP service, `workers`. */
export function devAppsConfig(o: {
  dataDir: string;
  servicePort: number;
  nodeId: string;
  replicas?: number;
}): Record<string, unknown> {
  const db = join(o.dataDir, 'orders.db');
  const r = o.replicas ?? 1;
  return {
    orders: {
      mode: 'active-passive',
      election: {
        ttlMs: 3000,
        renewIntervalMs: 1000,
        renewDeadlineMs: 2000,
        pollIntervalMs: 250,
        ...(r > 1 ? { replicas: r } : {}),
      },
      kvReplicas: r,
      recoveryBudgetMs: 10_000,
      sqlite: { path: db, snapshotIntervalMs: 60_000, worker: true, ...(r > 1 ? { replicas: r } : {}) },
      backend: {
        type: 'process',
        options: {
          command: process.execPath,
          args: [servicePath()],
          env: { PORT: String(o.servicePort), DB: db, NODE_ID: o.nodeId },
          health: { type: 'http', url: `http://127.0.0.1:${o.servicePort}/health` },
          graceMs: 3000,
        },
      },
    },
    workers: { mode: 'pool', kvReplicas: r },
  };
}

/** What {@link devNodeConfig} needs to know about one dev node. */
export interface DevNodeConfigInput {
  platform: string;
  nodeId: string;
  /** Its zone label. */
  zone: string;
  /** Client URLs of the dev nats-servers. */
  servers: string[];
  httpPort: number;
  dataDir: string;
  servicePort: number;
  /** Replicas of the apps' buckets and streams (the number of servers). Default 1. */
  replicas?: number;
}

/**
 * The `gc run` config file of a dev node, as YAML (written with the `yaml` library: any path, platform or
 * node id is quoted as it needs to be), with comments on what the example apps show.
 */
export function devNodeConfig(o: DevNodeConfigInput): string {
  const doc = new Document({
    platform: o.platform,
    node: { id: o.nodeId, labels: { zone: o.zone } },
    nats: { servers: o.servers },
    http: { host: '127.0.0.1', port: o.httpPort },
    dataDir: o.dataDir,
    log: { level: 'info', format: 'json' },
    apps: devAppsConfig({
      dataDir: o.dataDir,
      servicePort: o.servicePort,
      nodeId: o.nodeId,
      ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
    }),
  });
  const map = (...path: string[]): YAMLMap => {
    const node = doc.getIn(path, true);
    if (!isMap(node)) throw new Error(`dev config: no map at ${path.join('.')}`);
    return node;
  };
  const comment = (path: string[], text: string) => {
    const parent = map(...path.slice(0, -1));
    const pair = parent.items.find((p) => (p.key as { value?: unknown }).value === path.at(-1));
    (pair!.key as { commentBefore?: string }).commentBefore = text;
  };
  for (const path of [
    ['node'],
    ['nats'],
    ['http'],
    ['log'],
    ['apps', 'orders', 'election'],
    ['apps', 'orders', 'sqlite'],
    ['apps', 'orders', 'backend', 'options', 'env'],
    ['apps', 'orders', 'backend', 'options', 'health'],
  ])
    map(...path).flow = true;
  comment(
    ['apps', 'orders'],
    [
      ' active-passive: the leader promotes its replica of the SQLite database, starts the HTTP service',
      ' (process backend) on it, then runs onActive; kill the leader and watch all of it move.',
      ' sqlite.worker: commits are captured and published by a worker thread with its own connection',
    ].join('\n'),
  );
  comment(
    ['apps', 'orders', 'recoveryBudgetMs'],
    ' gc drill failover|stepdown|server-restart --app orders checks a failover against this',
  );
  comment(['apps', 'workers'], ' pool: active on every node');
  return doc.toString({ lineWidth: 0 });
}
