// Diagnostic: where the replication-lag time goes at RATE tx/s (default 1000). Per transaction: commit →
// the replica's `applied` (p50, p99), the synchronous part of captureNow(), with SPY=1 commit → the message
// seen by a core subscriber on a second connection, and the process's CPU per transaction (all threads)
// for gc and for the raw baseline. ONLY=gc|raw runs one side (for a CPU profile).
// node --conditions=@gc/source --import <tsx> packages/wal/bench/_stages.ts
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { makeTempDir, startServer } from '@gc/testkit';
import { createPrimary, createReplica } from '@gc/wal';
import { median, percentile, round, sleep } from './_util.js';

const RATE = Number(process.env.RATE ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const server = await startServer();
const nc = await connect({ servers: server.url });
const spy = await connect({ servers: server.url });
const dir = await makeTempDir('bench-stages');
let appNo = 0;

async function gcRound(): Promise<void> {
  const app = `st${++appNo}`;
  const primary = await createPrimary(nc, { platform: 'bench', app, path: join(dir, `${app}.db`), epoch: 1 });
  primary.db.pragma('synchronous = NORMAL');
  primary.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const base = (await primary.sync()).txid;
  const replica = await createReplica(nc, { platform: 'bench', app, path: join(dir, `${app}-r.db`) });
  await replica.waitForTxid(base);
  const commits: number[] = [];
  const seen: number[] = [];
  const applied: number[] = [];
  const sub = (process.env.SPY ? spy : nc).subscribe(
    process.env.SPY ? `bench_${app}_wal.tx` : `nothing.${app}`,
    {
      callback: (_e, m) => {
        const txid = Number(m.headers?.get('Gc-Txid') || 0);
        const t = performance.now();
        void txid;
        seen.push(t);
      },
    },
  );
  await spy.flush();
  replica.onEvent((e) => {
    if (e.type !== 'applied') return;
    const now = performance.now();
    while (applied.length < commits.length && base + applied.length + 1 <= e.txid) applied.push(now);
  });
  const ins = primary.db.prepare('INSERT INTO t (v) VALUES (?)');
  const commit = primary.db.transaction((i: number) => ins.run(`row ${i}`.padEnd(100, '.')));
  const total = RATE;
  const captureMs: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    while (performance.now() < due) await sleep(Math.max(0, Math.min(5, due - performance.now())));
    commit(i);
    const c = performance.now();
    commits.push(c);
    primary.captureNow();
    captureMs.push(performance.now() - c);
  }
  await replica.waitForTxid(base + total, 30_000);
  const cpu = process.cpuUsage(cpu0);
  sub.unsubscribe();
  const toSeen = seen.slice(0, total).map((t, i) => t - commits[i]!);
  const toApplied = applied.map((t, i) => t - commits[i]!);
  console.log(
    JSON.stringify({
      side: 'gc',
      messages: seen.length,
      captureNowSyncP50Us: round(median(captureMs) * 1000),
      commitToSeenP50Ms: round(median(toSeen)),
      commitToAppliedP50Ms: round(median(toApplied)),
      commitToAppliedP99Ms: round(percentile(toApplied, 99)),
      cpuUsPerTx: round((cpu.user + cpu.system) / total),
    }),
  );
  await replica.close();
  await primary.close();
}

async function rawRound(): Promise<void> {
  const name = `bench_raw${++appNo}`;
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.x`] });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(name);
  const sent: number[] = [];
  const lags: number[] = [];
  const total = RATE;
  const iter = await consumer.consume();
  const reading = (async () => {
    for await (const m of iter) {
      lags.push(performance.now() - sent[m.seq - 1]!);
      if (m.seq >= total) break;
    }
  })();
  const payload = new Uint8Array(4760);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    while (performance.now() < due) await sleep(Math.max(0, Math.min(5, due - performance.now())));
    sent.push(performance.now());
    acks.push(js.publish(`${name}.x`, payload));
  }
  await Promise.all(acks);
  await reading;
  const cpu = process.cpuUsage(cpu0);
  iter.stop();
  await jsm.streams.delete(name);
  console.log(
    JSON.stringify({
      side: 'raw',
      p50Ms: round(median(lags)),
      p99Ms: round(percentile(lags, 99)),
      cpuUsPerTx: round((cpu.user + cpu.system) / total),
    }),
  );
}

const only = process.env.ONLY; // gc | raw: profile one side
await gcRound();
await rawRound();
for (let r = 0; r < ROUNDS; r++) {
  if (only !== 'raw') await gcRound();
  if (only !== 'gc') await rawRound();
}
await spy.close();
await nc.close();
await server.close();
