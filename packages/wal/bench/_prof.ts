import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { createPrimary } from '@gc/wal';

const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('prof');
const primary = await createPrimary(nc, { platform: 'bench', app: 'p', path: join(dir, `p.db`), epoch: 1, ...(process.env.WORKER ? { worker: { connect: { servers: server.url } } } : {}) });
const db = primary.db;
db.pragma(`synchronous = ${process.env.SYNC ?? 'NORMAL'}`);
db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
const tx = db.transaction((n: number) => {
  for (let r = 0; r < 5; r++) ins.run(`value ${n}.${r}`.padEnd(100, '.'));
});
let n = 0;
const t0 = performance.now();
while (performance.now() - t0 < 4000) {
  for (let i = 0; i < 20; i++) tx(n++);
  await new Promise((r) => setImmediate(r));
}
console.error('tps', n / 4);
await primary.sync(120_000);
await primary.close();
await nc.close();
await server.close();
