// Diagnostic: write-overhead's worker engine at synchronous=FULL with variants of the primary's options against
// replication off, 6 rounds (the first dropped). VARIANTS='{"name":{...options}}', default {"default":{}}.
// Found that the -wal file watch cost a fifth of the commit rate under load (see docs/benchmarks.md).
// node --conditions=@gc/source --import <tsx> packages/wal/bench/_overhead-variants.ts
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { openDatabase, type SqliteDatabase } from '@gc/snapshot';
import { createPrimary } from '@gc/wal';
import { commitLoad, median, round } from './_util.js';
const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('bench-ovd');
let no = 0;
const load = (db: SqliteDatabase) => commitLoad(db, 'FULL', 300, 1500);
const variants: Record<string, object> = JSON.parse(process.env.VARIANTS ?? '{"default":{}}');
async function on(extra: object) {
  const app = `ov${++no}`;
  const primary = await createPrimary(nc, {
    platform: 'bench',
    app,
    path: join(dir, `${app}.db`),
    epoch: 1,
    worker: { connect: { servers: server.url } },
    ...extra,
  });
  let ck = 0;
  primary.onEvent((e) => {
    if (e.type === 'checkpoint') ck++;
  });
  const tps = await load(primary.db);
  await primary.sync(120_000);
  await primary.close();
  return { tps, ck };
}
async function off() {
  const db = openDatabase(join(dir, `off${++no}.db`));
  db.pragma('journal_mode = WAL');
  const t = await load(db);
  db.close();
  return t;
}
const res: Record<string, number[]> = {};
const offs: number[] = [];
const cks: Record<string, number[]> = {};
for (let r = 0; r < 6; r++) {
  for (const [k, v] of Object.entries(variants)) {
    const o = await on(v);
    (res[k] ??= []).push(o.tps);
    (cks[k] ??= []).push(o.ck);
  }
  offs.push(await off());
}
const offM = median(offs.slice(1));
console.log(
  JSON.stringify({
    off: round(offM, 0),
    ...Object.fromEntries(
      Object.entries(res).map(([k, a]) => [
        k,
        { tps: round(median(a.slice(1)), 0), ratio: round(median(a.slice(1)) / offM), ck: median(cks[k]!) },
      ]),
    ),
  }),
);
await nc.close();
await server.close();
