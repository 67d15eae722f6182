// Benchmark `renew`: one lease renew (send → reply, as the election measures it for its deadline) against a
// raw `kv.update(key, value, revision)` of the same size on the same bucket and connection, paced alike
// (one every 50 ms). Interleaved A B A B, 7 rounds of 30 after a warm-up round. Bar: p50 ratio ≤ 1.2.
import { connect } from '@gc/core';
import { createElection } from '@gc/election';
import { startServer } from '@gc/testkit';
import { Kvm } from '@nats-io/kv';
import { median, progress, r3, report } from './_util.js';

const ROUNDS = Number(process.env.GC_BENCH_ROUNDS ?? 7);
const N = 30;
const PACE = 50;
const server = await startServer();
const nc = await connect({ servers: server.url, name: 'bench-renew' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gcRound(): Promise<number[]> {
  // TTL 300 ms: renew every 50 ms (the pace of the baseline), demote after 200 ms.
  const e = await createElection(nc, {
    bucket: 'bench_renew',
    nodeId: 'a',
    ttlMs: 300,
    renewIntervalMs: PACE,
    renewDeadlineMs: 200,
    pollIntervalMs: 250, // the default poll of a 3 s TTL, not ttl/12 = 25 ms
    cooldownMs: 0,
  });
  const latencies: number[] = [];
  await new Promise<void>((resolve) => {
    e.on('renewed', ({ latencyMs }) => {
      latencies.push(latencyMs);
      if (latencies.length === N) resolve();
    });
  });
  await e.close();
  return latencies;
}

const kv = await new Kvm(nc).create('bench_renew', { history: 1 });
let rev = await kv.put('raw', 'x');
async function rawRound(): Promise<number[]> {
  const value = JSON.stringify({
    holder: 'a',
    instance: 'abcdefgh',
    epoch: Date.now(),
    ttlMs: 300,
    live: false,
    priority: 10,
    grantedAt: Date.now(),
  });
  const latencies: number[] = [];
  for (let i = 0; i < N; i++) {
    await sleep(PACE);
    const t0 = performance.now();
    rev = await kv.update('raw', value, rev);
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

const ratios: number[] = [];
const gcP50: number[] = [];
const rawP50: number[] = [];
for (let r = 0; r <= ROUNDS; r++) {
  const a = median(await gcRound());
  const b = median(await rawRound());
  progress(
    `round ${r}: renew p50 ${a.toFixed(3)} ms, kv.update p50 ${b.toFixed(3)} ms${r === 0 ? ' (warm-up)' : ''}`,
  );
  if (r === 0) continue;
  gcP50.push(a);
  rawP50.push(b);
  ratios.push(a / b);
}
await nc.close();
await server.close();
const ratio = median(ratios);
report({
  bench: 'renew',
  rounds: ratios.length,
  perRound: N,
  renewP50Ms: r3(median(gcP50)),
  kvUpdateP50Ms: r3(median(rawP50)),
  server: server.version,
  ratio: r3(ratio),
  bar: 1.2,
  pass: ratio <= 1.2,
});
