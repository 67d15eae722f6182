// snapshot: a 64 MiB database to the object store and back (upload with page checksums; restore with
// digest, checksum and integrity_check, then rename into place), against raw object-store put/get of
// the same file in the same run. Interleaved A B A B, 5 rounds after a warm-up. Bar: MB/s ratio ≥ 0.8
// both ways; the restored database passes integrity_check (restore checks it, or throws).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { makeTempDir, startServer, median } from '@gc/testkit';
import { createSnapshotStore, formatChecksum, hashFile, openDatabase } from '@gc/snapshot';

const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('bench-snapshot');
const path = join(dir, 'db.db');
const db = openDatabase(path);
db.pragma('journal_mode = WAL');
db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)');
const ins = db.prepare('INSERT INTO t (b) VALUES (randomblob(4000))');
db.transaction(() => {
  while ((db.pragma('page_count', { simple: true }) as number) * 4096 < 64 * 2 ** 20)
    for (let i = 0; i < 1000; i++) ins.run();
})();
db.close();
const bytes = readFileSync(path);
const mb = bytes.length / 2 ** 20;
const h = hashFile(path);
const position = {
  txid: 1,
  seq: 1,
  epoch: 1,
  checksum: formatChecksum(h.checksum),
  pageSizeBytes: 4096,
  pageCount: h.pageCount,
};
const store = await createSnapshotStore(nc, { platform: 'bench', app: 'snap' });
const raw = await new Objm(nc).create('bench_raw');

async function gc(): Promise<[number, number]> {
  let t = performance.now();
  await store.put(path, position);
  const up = mb / ((performance.now() - t) / 1000);
  const target = join(dir, 'restored.db');
  rmSync(target, { force: true });
  t = performance.now();
  await store.restore(target);
  const down = mb / ((performance.now() - t) / 1000);
  return [up, down];
}

async function baseline(): Promise<[number, number]> {
  let t = performance.now();
  await raw.putBlob({ name: 'x' }, bytes);
  const up = mb / ((performance.now() - t) / 1000);
  t = performance.now();
  const got = await raw.getBlob('x');
  writeFileSync(join(dir, 'raw.db'), got!);
  const down = mb / ((performance.now() - t) / 1000);
  return [up, down];
}

await gc();
await baseline();
const up: number[] = [];
const down: number[] = [];
const rows: string[] = [];
for (let r = 0; r < 5; r++) {
  const [gu, gd] = await gc();
  const [bu, bd] = await baseline();
  up.push(gu / bu);
  down.push(gd / bd);
  rows.push(
    `round ${r}: gc up ${gu.toFixed(0)} MB/s down ${gd.toFixed(0)} MB/s; raw up ${bu.toFixed(0)} down ${bd.toFixed(0)}`,
  );
}
for (const r of rows) console.error(r);
await nc.close();
await server.close();
const upRatio = median(up);
const downRatio = median(down);
const ratio = Math.min(upRatio, downRatio);
console.log(
  JSON.stringify({
    bench: 'snapshot',
    sizeMiB: Math.round(mb),
    uploadRatio: Math.round(upRatio * 1000) / 1000,
    restoreRatio: Math.round(downRatio * 1000) / 1000,
    integrityCheck: 'ok',
    ratio: Math.round(ratio * 1000) / 1000,
    bar: 0.8,
    pass: ratio >= 0.8,
  }),
);
