// write-overhead: SQLite transactions per second with replication on (the primary capturing every
// commit and publishing it to the stream; replicas are other nodes) vs off (same database settings,
// no replicator). Interleaved A B A B, 7 rounds after a warm-up; each round opens a fresh database, commits
// 5-row transactions for 300 ms unmeasured (steady state) and then for 1.5 s measured, yielding to the event
// loop every 20 transactions (as an app serving requests would).
// Measured with synchronous=FULL and synchronous=NORMAL, with the capture engine in a worker thread (the
// `worker` option: the configuration for write-heavy apps; the bar) and in the app's thread (reported).
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { openDatabase, type SqliteDatabase } from '@gc/snapshot';
import { createPrimary } from '@gc/wal';
import { commitLoad, median, round } from './_util.js';

const ROUNDS = 7;
const ROUND_MS = 1500;
const WARM_MS = 300;
const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('bench-overhead');
let no = 0;

let synchronous = 'FULL';
let inWorker = true;

/** Commits per second on `db` at the current `synchronous` setting (see commitLoad). */
const load = (db: SqliteDatabase) => commitLoad(db, synchronous, WARM_MS, ROUND_MS);

async function on(): Promise<number> {
  const app = `ov${++no}`;
  const primary = await createPrimary(nc, {
    platform: 'bench',
    app,
    path: join(dir, `${app}.db`),
    epoch: 1,
    ...(inWorker ? { worker: { connect: { servers: server.url } } } : {}),
  });
  const tps = await load(primary.db);
  await primary.sync(120_000); // everything committed reached the stream
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

async function measure(): Promise<{ on: number; off: number; ratio: number }> {
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
    console.error(
      `synchronous=${synchronous} ${inWorker ? 'worker' : 'inline'} round ${r}: on ${Math.round(x)} tx/s, off ${Math.round(y)} tx/s`,
    );
  }
  return { on: Math.round(median(a)), off: Math.round(median(b)), ratio: round(median(ratios)) };
}

const full = await measure();
synchronous = 'NORMAL';
const normal = await measure();
inWorker = false;
synchronous = 'FULL';
const fullInline = await measure();
synchronous = 'NORMAL';
const normalInline = await measure();
await nc.close();
await server.close();
const bar = 0.8;
const ratio = Math.min(full.ratio, normal.ratio);
console.log(
  JSON.stringify({
    bench: 'write-overhead',
    txRows: 5,
    worker: { synchronousFull: full, synchronousNormal: normal },
    inline: { synchronousFull: fullInline, synchronousNormal: normalInline },
    ratio,
    bar,
    pass: ratio >= bar,
  }),
);
