// Diagnostic: does the capture engine's heap grow under a steady external write load? A primary captures
// a database another connection writes at RATE tx/s; every 10 s the heap after a full GC is printed, and
// heap snapshots are written at the first and last sample (HEAP_SNAPSHOTS=<dir>).
// node --expose-gc --conditions=@gc/source --import <tsx> packages/wal/bench/_heap-growth.ts
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { openDatabase } from '@gc/sqlite';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { createPrimary } from '@gc/wal';
import { sleep } from './_util.js';

const RATE = Number(process.env.RATE ?? 100);
const SECONDS = Number(process.env.SECONDS ?? 90);
const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('heap-growth');
const path = join(dir, 'orders.db');
const primary = await createPrimary(nc, { platform: 'bench', app: 'orders', path, epoch: 1 });
const app = openDatabase(path);
app.pragma('journal_mode = WAL');
app.exec('CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, node TEXT, at INTEGER)');
const ins = app.prepare('INSERT INTO orders (node, at) VALUES (?, ?)');
const gc = (globalThis as { gc?: () => void }).gc!;
const t0 = performance.now();
let i = 0;
let nextSample = 0;
while (performance.now() - t0 < SECONDS * 1000) {
  ins.run('a', Date.now());
  i++;
  const due = t0 + (i * 1000) / RATE;
  const s = (performance.now() - t0) / 1000;
  if (s >= nextSample) {
    gc();
    const m = process.memoryUsage();
    console.log(
      `${s.toFixed(0)}s tx ${i} heapUsed ${(m.heapUsed / 2 ** 20).toFixed(1)} MiB rss ${(m.rss / 2 ** 20).toFixed(1)} MiB`,
    );
    if (process.env.HEAP_SNAPSHOTS && (nextSample === 10 || s + 10 >= SECONDS))
      writeHeapSnapshot(join(process.env.HEAP_SNAPSHOTS, `h${nextSample}.heapsnapshot`));
    nextSample += 10;
  }
  await sleep(Math.max(0, due - performance.now()));
}
app.close();
await primary.close();
await nc.close();
await server.close();
