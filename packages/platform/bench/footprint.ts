// pnpm bench footprint: RSS and CPU of one `gc run` node (the built binary, as an operator runs it) with three
// apps — an active-passive app with a replicated SQLite database and its process backend (the `gc dev` orders
// service), a pool app and a plain active-passive app — first idle, then under a replication load (orders
// placed at LOAD_TPS through the service, each one a commit captured and published, and a second node
// following as a replica). Sampled from /proc every SAMPLE_MS.
// Bars (quality-bars): idle CPU < 2 % of a core; RSS growth < 10 % over 10 minutes, measured after a warm-up
// (WARMUP_MS idle, LOAD_WARMUP_MS under load: see below). Duration: FOOTPRINT_MS per measured window
// (default 10 minutes; 60000 for a quick run), so a full run takes about 27 minutes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeTempDir, spawnNode, startServer, cleanupAll, type ChildNode } from '@gc/testkit';
import { writeFootprintConfig } from './_node-config.js';

const PHASE_MS = Number(process.env.FOOTPRINT_MS ?? 600_000);
// Warm-up before each measured window: a minute idle; under load, long enough for the V8 heaps (the
// capture worker's above all) and the allocator to grow to their working set, which takes about five
// minutes at 100 orders/s. The growth from the first minute of load is reported too (`rssGrowthAfter1Min`).
const WARMUP_MS = Number(process.env.WARMUP_MS ?? Math.min(60_000, PHASE_MS / 4));
const LOAD_WARMUP_MS = Number(process.env.LOAD_WARMUP_MS ?? Math.min(300_000, PHASE_MS / 2));
const SAMPLE_MS = Number(process.env.SAMPLE_MS ?? 5000);
const LOAD_TPS = Number(process.env.LOAD_TPS ?? 100);
const bin = fileURLToPath(new URL('../../../apps/cli/bin/run.js', import.meta.url));
// FOOTPRINT_WORKER=0: capture in the node's main thread instead of the worker (to tell their costs apart).
const WORKER = process.env.FOOTPRINT_WORKER !== '0';
const ticks = 100; // USER_HZ on Linux

const server = await startServer();
const dir = await makeTempDir('footprint');

async function node(id: string): Promise<{ child: ChildNode; servicePort: number; httpPort: number }> {
  const { path: cfg, servicePort, httpPort } = await writeFootprintConfig(dir, id, server.url, WORKER);
  const child = spawnNode(bin, { args: ['run', '-c', cfg], label: `footprint-${id}` });
  const deadline = performance.now() + 60_000;
  while (!child.output().includes('is running')) {
    if (performance.now() > deadline || !child.running)
      throw new Error(`node ${id} did not start\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, servicePort, httpPort };
}

/** CPU seconds (user + system) and RSS in MiB of a process. */
function usage(pid: number): { cpuS: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(f[11]) + Number(f[12])) / ticks;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuS, rssMiB: Number(rss?.[1] ?? 0) / 1024 };
}

interface Heap {
  heapMiB: number;
  heapTotalMiB: number;
  newSpaceMiB: number;
  externalMiB: number;
}

/** V8 heap in use and external (Buffers, SQLite-bound) memory in MiB, from the node's /metrics. */
async function heap(httpPort: number): Promise<Heap> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const v = (name: string) =>
      +(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]) / 2 ** 20).toFixed(1);
    const newSpace = +(
      Number(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)$/m.exec(text)?.[1]) /
      2 ** 20
    ).toFixed(1);
    return {
      heapMiB: v('nodejs_heap_size_used_bytes'),
      heapTotalMiB: v('nodejs_heap_size_total_bytes'),
      newSpaceMiB: newSpace,
      externalMiB: v('nodejs_external_memory_bytes'),
    };
  } catch {
    return { heapMiB: NaN, heapTotalMiB: NaN, newSpaceMiB: NaN, externalMiB: NaN };
  }
}

interface Phase {
  cpuPct: number;
  rssStartMiB: number;
  rssEndMiB: number;
  rssMaxMiB: number;
  rssGrowth: number;
  /** RSS one minute into the phase (into the warm-up), for the growth a short warm-up would have shown. */
  rss1MinMiB: number;
  heapStartMiB: number;
  heapEndMiB: number;
  samples: Array<{ s: number; rssMiB: number; cpuPct: number } & Heap>;
}

async function measure(
  pid: number,
  httpPort: number,
  warmupMs: number,
  during: (stop: () => boolean) => Promise<void>,
): Promise<Phase> {
  let stopped = false;
  const work = during(() => stopped);
  const t0 = performance.now();
  let rss1MinMiB = NaN;
  // The warm-up is observed like the window (a /metrics scrape every SAMPLE_MS), so that the window starts
  // from a state that already includes the observer's own load: the first scrapes of a process compile and
  // allocate what every later one reuses.
  while (performance.now() - t0 < warmupMs) {
    await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, warmupMs - (performance.now() - t0))));
    await heap(httpPort);
    if (Number.isNaN(rss1MinMiB) && performance.now() - t0 >= 60_000) rss1MinMiB = usage(pid).rssMiB;
  }
  const start = usage(pid);
  if (Number.isNaN(rss1MinMiB)) rss1MinMiB = start.rssMiB;
  const heapStart = await heap(httpPort);
  const tStart = performance.now();
  const samples: Phase['samples'] = [];
  let prev = { ...start, t: tStart };
  while (performance.now() - tStart < PHASE_MS) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const u = usage(pid);
    const t = performance.now();
    samples.push({
      s: Math.round((t - tStart) / 1000),
      rssMiB: +u.rssMiB.toFixed(1),
      cpuPct: +((100 * (u.cpuS - prev.cpuS)) / ((t - prev.t) / 1000)).toFixed(2),
      ...(await heap(httpPort)),
    });
    prev = { ...u, t };
  }
  stopped = true;
  await work;
  const end = usage(pid);
  const heapEnd = await heap(httpPort);
  const seconds = (performance.now() - tStart) / 1000;
  return {
    cpuPct: +((100 * (end.cpuS - start.cpuS)) / seconds).toFixed(3),
    rssStartMiB: +start.rssMiB.toFixed(1),
    rssEndMiB: +end.rssMiB.toFixed(1),
    rssMaxMiB: Math.max(...samples.map((x) => x.rssMiB)),
    rssGrowth: +((end.rssMiB - start.rssMiB) / start.rssMiB).toFixed(3),
    rss1MinMiB: +rss1MinMiB.toFixed(1),
    heapStartMiB: heapStart.heapMiB,
    heapEndMiB: heapEnd.heapMiB,
    samples,
  };
}

try {
  const a = await node('a');
  // The measured node leads (it started first); b follows as the replica during the load phase.
  const idle = await measure(a.child.pid, a.httpPort, WARMUP_MS, async () => undefined);
  const b = await node('b');
  let placed = 0;
  let failed = 0;
  const load = await measure(a.child.pid, a.httpPort, LOAD_WARMUP_MS, async (stop) => {
    const every = 1000 / LOAD_TPS;
    let next = performance.now();
    while (!stop()) {
      next += every;
      try {
        const r = await fetch(`http://127.0.0.1:${a.servicePort}/`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) placed++;
        else failed++;
      } catch {
        failed++;
      }
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  });
  await b.child.stop();
  await a.child.stop();
  const pass = idle.cpuPct < 2 && idle.rssGrowth < 0.1 && load.rssGrowth < 0.1;
  console.log(
    JSON.stringify({
      chart: { idle: idle.samples, load: load.samples },
    }),
  );
  console.log(
    JSON.stringify({
      bench: 'footprint',
      phaseMs: PHASE_MS,
      warmupMs: WARMUP_MS,
      loadWarmupMs: LOAD_WARMUP_MS,
      idle: {
        cpuPct: idle.cpuPct,
        rssStartMiB: idle.rssStartMiB,
        rssEndMiB: idle.rssEndMiB,
        rssGrowth: idle.rssGrowth,
        heapStartMiB: idle.heapStartMiB,
        heapEndMiB: idle.heapEndMiB,
      },
      load: {
        tps: LOAD_TPS,
        ordersPlaced: placed,
        failed,
        cpuPct: load.cpuPct,
        rssStartMiB: load.rssStartMiB,
        rssEndMiB: load.rssEndMiB,
        rssMaxMiB: load.rssMaxMiB,
        rssGrowth: load.rssGrowth,
        rss1MinMiB: load.rss1MinMiB,
        rssGrowthAfter1Min: +((load.rssEndMiB - load.rss1MinMiB) / load.rss1MinMiB).toFixed(3),
        heapStartMiB: load.heapStartMiB,
        heapEndMiB: load.heapEndMiB,
      },
      ratio: idle.cpuPct / 2,
      bar: { idleCpuPctMax: 2, rssGrowthMax: 0.1 },
      pass,
    }),
  );
} finally {
  await server.close();
  await cleanupAll();
}
