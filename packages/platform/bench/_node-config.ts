// The footprint bench's node: three apps — `orders` (active-passive, a replicated SQLite database, the
// `gc dev` orders service as its process backend), `workers` (pool) and `scheduler` (active-passive) —
// written as a gc.yaml, for the bench and its diagnostics.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@gc/testkit';

const service = fileURLToPath(new URL('../../../apps/cli/dev/orders-service.mjs', import.meta.url));

/** A written config: its path and the ports it uses. */
export interface FootprintNodeConfig {
  path: string;
  servicePort: number;
  httpPort: number;
}

/** Writes `<dir>/<id>.yaml` for node `id` on `natsUrl`; `worker`: the capture engine in a worker thread. */
export async function writeFootprintConfig(
  dir: string,
  id: string,
  natsUrl: string,
  worker = true,
): Promise<FootprintNodeConfig> {
  const dataDir = join(dir, id);
  const servicePort = await freePort();
  const httpPort = await freePort();
  const db = join(dataDir, 'orders.db');
  const path = join(dir, `${id}.yaml`);
  writeFileSync(
    path,
    `platform: fp
node: { id: ${id} }
nats: { servers: [${natsUrl}] }
http: { host: 127.0.0.1, port: ${httpPort} }
dataDir: ${dataDir}
log: { level: warn }
apps:
  orders:
    mode: active-passive
    sqlite: { path: ${JSON.stringify(db)}, snapshotIntervalMs: 60000, worker: ${worker} }
    backend:
      type: process
      options:
        command: ${JSON.stringify(process.execPath)}
        args: [${JSON.stringify(service)}]
        env: { PORT: "${servicePort}", DB: ${JSON.stringify(db)}, NODE_ID: ${id} }
        health: { type: http, url: "http://127.0.0.1:${servicePort}/health" }
  workers:
    mode: pool
  scheduler:
    mode: active-passive
`,
  );
  return { path, servicePort, httpPort };
}
