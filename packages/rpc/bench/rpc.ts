// `pnpm bench rpc`: cross-app RPC round trip with a 128 B payload, 1 and 32 calls in flight, against
// raw `nc.request` to a raw responder on the same server, interleaved A B A B over several rounds after
// a warm-up. Prints one JSON line last; exits 0 even when the bar is missed.
import { connect, silentLogger } from '@gc/core';
import { startServer, median } from '@gc/testkit';
import { createRpcClient, createRpcServer } from '@gc/rpc';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11);
const SERIAL_CALLS = Number(process.env.BENCH_SERIAL ?? 2000); // per round and side, 1 in flight
const PARALLEL_CALLS = Number(process.env.BENCH_PARALLEL ?? 8000); // per round and side, 32 in flight
const IN_FLIGHT = 32;
const BAR_P50 = 1.3;
const BAR_THROUGHPUT = 0.75;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const server = await startServer();
const ncServer = await connect({ servers: server.url, name: 'bench-orders' });
const ncClient = await connect({ servers: server.url, name: 'bench-billing' });

// gc: app "orders" serves "echo"; app "billing" calls it (two connections, like two apps).
const rpcServer = createRpcServer(ncServer, {
  platform: 'bench',
  app: 'orders',
  nodeId: 'n1',
  logger: silentLogger,
});
rpcServer.handle('echo', (p: unknown) => p);
await rpcServer.refresh();
const rpc = createRpcClient(ncClient, { platform: 'bench', logger: silentLogger }).api('orders');
const payload = 'x'.repeat(126); // JSON-encoded: 128 bytes
const raw = new TextEncoder().encode(JSON.stringify(payload));
if (raw.length !== 128) throw new Error(`payload is ${raw.length} bytes, expected 128`);

// Baseline: a raw responder on the same server that echoes the bytes.
ncServer.subscribe('bench.raw.echo', {
  callback: (_e, m) => {
    m.respond(m.data);
  },
});
await ncServer.flush();

type Side = 'gc' | 'raw';
const once: Record<Side, () => Promise<unknown>> = {
  gc: () => rpc.call('echo', payload),
  raw: () => ncClient.request('bench.raw.echo', raw, { timeout: 5000 }),
};

async function serial(side: Side, n: number): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once[side]();
    lat.push((performance.now() - t) * 1000);
  }
  return lat;
}

async function parallel(side: Side, n: number): Promise<number> {
  let next = 0;
  const t = performance.now();
  const worker = async () => {
    while (next < n) {
      next++;
      await once[side]();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return n / ((performance.now() - t) / 1000);
}

// Warm-up (JIT, subscriptions, connections).
for (const side of ['gc', 'raw'] as const) {
  await serial(side, 500);
  await parallel(side, 2000);
}

// Each round measures both sides in alternating blocks (A B A B …) so that load from other processes
// on this shared machine hits both alike; the round's ratio compares the two sides of that round.
const BLOCKS = 10;
const p50: Record<Side, number[]> = { gc: [], raw: [] };
const p99: Record<Side, number[]> = { gc: [], raw: [] };
const tput: Record<Side, number[]> = { gc: [], raw: [] };
const p50Ratios: number[] = [];
const tputRatios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const lat: Record<Side, number[]> = { gc: [], raw: [] };
  const busyMs: Record<Side, number> = { gc: 0, raw: 0 };
  for (let b = 0; b < BLOCKS; b++) {
    // Alternate which side goes first so drift does not favour one.
    const order: Side[] = (r + b) % 2 ? ['raw', 'gc'] : ['gc', 'raw'];
    for (const side of order) lat[side].push(...(await serial(side, SERIAL_CALLS / BLOCKS)));
    for (const side of order) {
      const n = PARALLEL_CALLS / BLOCKS;
      busyMs[side] += (n / (await parallel(side, n))) * 1000;
    }
  }
  const thr = { gc: PARALLEL_CALLS / (busyMs.gc / 1000), raw: PARALLEL_CALLS / (busyMs.raw / 1000) };
  for (const side of ['gc', 'raw'] as const) {
    p50[side].push(median(lat[side]));
    p99[side].push(pct(lat[side], 99));
    tput[side].push(thr[side]);
  }
  p50Ratios.push(median(lat.gc) / median(lat.raw));
  tputRatios.push(thr.gc / thr.raw);
  console.error(
    `round ${r + 1}/${ROUNDS}: p50 gc ${median(lat.gc).toFixed(1)} µs raw ${median(lat.raw).toFixed(1)} µs; ` +
      `32 in flight gc ${Math.round(thr.gc)}/s raw ${Math.round(thr.raw)}/s`,
  );
}

await rpcServer.close();
await ncClient.close();
await ncServer.close();
await server.close();

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const ratio = median(p50Ratios);
const throughputRatio = median(tputRatios);
const pass = ratio <= BAR_P50 && throughputRatio >= BAR_THROUGHPUT;
console.log(
  JSON.stringify({
    bench: 'rpc',
    payloadBytes: raw.length,
    rounds: ROUNDS,
    serialCallsPerRound: SERIAL_CALLS,
    parallelCallsPerRound: PARALLEL_CALLS,
    inFlight: IN_FLIGHT,
    p50Us: { gc: round(median(p50.gc), 1), raw: round(median(p50.raw), 1) },
    p99Us: { gc: round(median(p99.gc), 1), raw: round(median(p99.raw), 1) },
    throughputPerSec: { gc: Math.round(median(tput.gc)), raw: Math.round(median(tput.raw)) },
    throughputRatio: round(throughputRatio),
    natsServer: server.version,
    node: process.version,
    ratio: round(ratio),
    bar: { p50Ratio: BAR_P50, throughputRatio: BAR_THROUGHPUT },
    pass,
  }),
);
