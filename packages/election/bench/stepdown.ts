// Benchmark `stepdown`: graceful step-down of the leader → the standby is leader (its `acquired` event),
// against the raw NATS KV sequence it is made of: delete → a watcher sees it → create. Interleaved A B A B,
// 15 rounds after a warm-up, on one loopback nats-server. Bar: median ratio ≤ 3 and the median hand-over
// faster than one renew interval.
import { connect } from '@gc/core';
import { createElection, type Election } from '@gc/election';
import { startServer, waitFor } from '@gc/testkit';
import { Kvm } from '@nats-io/kv';
import { median, progress, r3, report } from './_util.js';

const ROUNDS = Number(process.env.GC_BENCH_ROUNDS ?? 15);
const TTL = 3000;
const RENEW = TTL / 3;
const server = await startServer();
const c1 = await connect({ servers: server.url, name: 'a' });
const c2 = await connect({ servers: server.url, name: 'b' });

// gc: two elections; the leader steps down, the other takes over.
const opts = { bucket: 'bench_stepdown', ttlMs: TTL, cooldownMs: 100 };
const elections: Election[] = [
  await createElection(c1, { ...opts, nodeId: 'a' }),
  await createElection(c2, { ...opts, nodeId: 'b' }),
];
await waitFor(() => elections.some((e) => e.isLeader()), { timeoutMs: 10_000 });

async function gcRound(): Promise<number> {
  await waitFor(
    () => elections.some((e) => e.isLeader()) && elections.every((e) => e.state() !== 'cooldown'),
    {
      timeoutMs: 10_000,
    },
  );
  const leader = elections.find((e) => e.isLeader())!;
  const standby = elections.find((e) => e !== leader)!;
  const acquired = new Promise<number>((resolve) => {
    const off = standby.on('acquired', () => {
      off();
      resolve(performance.now());
    });
  });
  const t0 = performance.now();
  await leader.stepDown();
  return (await acquired) - t0;
}

// Baseline: raw delete → watch → create on another bucket, same two connections.
const kv1 = await new Kvm(c1).create('bench_raw', { history: 1 });
const kv2 = await new Kvm(c2).create('bench_raw', { history: 1 });
await kv1.create('leader', 'x');
let onCreated: ((t: number) => void) | undefined;
const watch = await kv2.watch({ key: 'leader' });
void (async () => {
  for await (const e of watch) {
    if (e.operation !== 'PUT') {
      await kv2.create('leader', 'y');
      onCreated?.(performance.now());
    }
  }
})();

async function rawRound(): Promise<number> {
  const created = new Promise<number>((resolve) => (onCreated = resolve));
  const t0 = performance.now();
  const e = await kv1.get('leader');
  await kv1.delete('leader', { previousSeq: e!.revision });
  return (await created) - t0;
}

const gc: number[] = [];
const raw: number[] = [];
const ratios: number[] = [];
for (let r = 0; r <= ROUNDS; r++) {
  const a = await gcRound();
  const b = await rawRound();
  progress(`round ${r}: step-down ${a.toFixed(2)} ms, raw ${b.toFixed(2)} ms${r === 0 ? ' (warm-up)' : ''}`);
  if (r === 0) continue;
  gc.push(a);
  raw.push(b);
  ratios.push(a / b);
}
watch.stop();
await Promise.all(elections.map((e) => e.close()));
await c1.close();
await c2.close();
await server.close();

const ratio = median(ratios);
const gcMedian = median(gc);
report({
  bench: 'stepdown',
  rounds: gc.length,
  gcMedianMs: r3(gcMedian),
  gcMaxMs: r3(Math.max(...gc)),
  rawMedianMs: r3(median(raw)),
  renewIntervalMs: RENEW,
  ratio: r3(ratio),
  bar: { ratio: 3, medianBelowMs: RENEW },
  pass: ratio <= 3 && gcMedian < RENEW,
});
