// Diagnostic: where the replication-lag time goes at RATE tx/s (default 1000). Per transaction: commit →
// the replica's `applied` (p50, p99), the synchronous part of captureNow(), with SPY=1 commit → the message
// seen by a core subscriber on a second connection, and the process's CPU per transaction (all threads)
// for gc and for the raw baseline. ONLY=gc|raw runs one side (for a CPU profile).
// node --conditions=@gc/source --import <tsx> packages/wal/bench/_stages.ts
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { median, percentile, rawLags, round, sleep, startPair } from './_util.js';

const RATE = Number(process.env.RATE ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const server = await startServer();
const nc = await connect({ servers: server.url });
const spy = await connect({ servers: server.url });
const dir = await makeTempDir('bench-stages');
let appNo = 0;

async function gcRound(): Promise<void> {
  const app = `st${++appNo}`;
  const { primary, replica, base } = await startPair(nc, dir, app);
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
  const cpu0 = process.cpuUsage();
  const lags = await rawLags(nc, `bench_raw${++appNo}`, RATE, RATE, 4760);
  const cpu = process.cpuUsage(cpu0);
  console.log(
    JSON.stringify({
      side: 'raw',
      p50Ms: round(median(lags)),
      p99Ms: round(percentile(lags, 99)),
      cpuUsPerTx: round((cpu.user + cpu.system) / RATE),
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
