// write-overhead: SQLite transactions per second with replication on (primary replicating to the
// stream, a replica applying) vs off (same database settings, same connection options, no replicator).
// Interleaved A B A B, 5 rounds after a warm-up; each round commits single-row transactions for 1 s,
// yielding to the event loop every 20 transactions (as an app serving requests would).
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { openDatabase, type SqliteDatabase } from '@gc/snapshot';
import { createPrimary, createReplica } from '@gc/wal';
import { median, round } from './_util.js';

const ROUNDS = 5;
const ROUND_MS = 1000;
const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('bench-overhead');
let no = 0;

async function load(db: SqliteDatabase): Promise<number> {
  db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ROUND_MS) {
    for (let i = 0; i < 20; i++) ins.run(`value ${n++}`.padEnd(100, '.'));
    await new Promise((r) => setImmediate(r));
  }
  return n / ((performance.now() - t0) / 1000);
}

async function on(): Promise<number> {
  const app = `ov${++no}`;
  const primary = await createPrimary(nc, { platform: 'bench', app, path: join(dir, `${app}.db`), epoch: 1 });
  const replica = await createReplica(nc, { platform: 'bench', app, path: join(dir, `${app}-r.db`) });
  const tps = await load(primary.db);
  const pos = await primary.sync(60_000);
  await replica.waitForTxid(pos.txid, 60_000);
  await replica.close();
  await primary.close();
  return tps;
}

async function off(): Promise<number> {
  const db = openDatabase(join(dir, `off${++no}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  const tps = await load(db);
  db.close();
  return tps;
}

await on();
await off(); // warm-up
const a: number[] = [];
const b: number[] = [];
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const x = await on();
  const y = await off();
  a.push(x);
  b.push(y);
  ratios.push(x / y);
  console.error(`round ${r}: on ${Math.round(x)} tx/s, off ${Math.round(y)} tx/s`);
}
await nc.close();
await server.close();
const ratio = median(ratios);
const bar = 0.8;
console.log(
  JSON.stringify({
    bench: 'write-overhead',
    onTps: Math.round(median(a)),
    offTps: Math.round(median(b)),
    ratio: round(ratio),
    bar,
    pass: ratio >= bar,
  }),
);
