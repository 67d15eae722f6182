// promotion: elected → replica writable (catch-up, verify incl. integrity_check, move, publish epoch
// marker), with a backlog of 0, 1k and 10k transactions the replica has not applied yet, one stream message
// each (the worst case: commits the primary captured one by one; commits captured together travel as one
// message and catch up faster). Bar: backlog 0 ≤ 100 ms; time grows about linearly (10k ≤ 1.5 × 10 × 1k).
// 5 rounds per backlog after a warm-up.
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { createPrimary, createReplica, promote } from '@gc/wal';
import { median, round } from './_util.js';

const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('bench-promotion');
let no = 0;

async function once(
  backlog: number,
): Promise<{ totalMs: number; catchUpMs: number; verifyMs: number; startMs: number; messages: number }> {
  const app = `pr${++no}`;
  const old = await createPrimary(nc, { platform: 'bench', app, path: join(dir, `${app}-old.db`), epoch: 1 });
  old.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = old.db.prepare('INSERT INTO t (v) VALUES (?)');
  for (let i = 0; i < 200; i++) ins.run(`seed ${i}`);
  const base = await old.sync();
  const path = join(dir, `${app}-new.db`);
  const replica = await createReplica(nc, { platform: 'bench', app, path });
  await replica.waitForTxid(base.txid);
  await replica.close(); // stands still while the backlog builds
  for (let i = 0; i < backlog; i++) {
    // Captured on its own: the next write waits until this one is captured (else the primary would
    // capture commits that arrive while a round runs together, in fewer, larger messages).
    const captured = old.position().capturedTxid;
    await old.write(() => ins.run(`backlog ${i}`));
    while (old.position().capturedTxid === captured) await new Promise((r) => setImmediate(r));
  }
  const backlogMessages = (await old.sync(120_000)).seq - base.seq;
  if (backlogMessages < 0.95 * backlog) throw new Error(`backlog of only ${backlogMessages} messages`);
  await old.stop();
  const resumed = await createReplica(nc, { platform: 'bench', app, path });
  const { primary, timings } = await promote(resumed, { platform: 'bench', app, path }, nc, { epoch: 2 });
  await primary.close();
  return { ...timings, messages: backlogMessages };
}

await once(0); // warm-up
const out: Record<string, unknown> = { bench: 'promotion' };
const medians: Record<number, number> = {};
for (const backlog of [0, 1000, 10_000]) {
  const runs = [];
  for (let r = 0; r < 5; r++) runs.push(await once(backlog));
  medians[backlog] = median(runs.map((x) => x.totalMs));
  out[`backlog${backlog}`] = {
    totalMs: round(medians[backlog]),
    catchUpMs: round(median(runs.map((x) => x.catchUpMs))),
    verifyMs: round(median(runs.map((x) => x.verifyMs))),
    startMs: round(median(runs.map((x) => x.startMs))),
    messages: median(runs.map((x) => x.messages)),
  };
  console.error(`backlog ${backlog}: ${JSON.stringify(out[`backlog${backlog}`])}`);
}
await nc.close();
await server.close();
// Linearity: time per 1k transactions at 10k relative to 1k.
const ratio = (medians[10_000]! - medians[0]!) / (10 * Math.max(1e-9, medians[1000]! - medians[0]!));
const bar = { backlog0MaxMs: 100, linearRatioMax: 1.5 };
console.log(
  JSON.stringify({
    ...out,
    ratio: round(ratio),
    bar,
    pass: medians[0]! <= bar.backlog0MaxMs && ratio <= bar.linearRatioMax,
  }),
);
