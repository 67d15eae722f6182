// pnpm bench footprint: RSS and CPU of one `gc run` node (the built binary, as an operator runs it) with three
// apps — an active-passive app with a replicated SQLite database and its process backend (the `gc dev` orders
// service), a pool app and a plain active-passive app — first idle, then under a replication load (orders
// placed at LOAD_TPS through the service, each one a commit captured and published, and a second node
// following as a replica). Sampled from /proc every SAMPLE_MS.
// Bars (quality-bars): idle CPU < 2 % of a core; RSS growth < 10 % over the run (from the end of a
// one-minute warm-up to the end). Duration: FOOTPRINT_MS per phase (default 10 minutes; 60000 for a quick run).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, spawnNode, startServer, cleanupAll, type ChildNode } from '@gc/testkit';

const PHASE_MS = Number(process.env.FOOTPRINT_MS ?? 600_000);
const WARMUP_MS = Math.min(60_000, PHASE_MS / 4);
const SAMPLE_MS = Number(process.env.SAMPLE_MS ?? 5000);
const LOAD_TPS = Number(process.env.LOAD_TPS ?? 100);
const bin = fileURLToPath(new URL('../../../apps/cli/bin/run.js', import.meta.url));
const service = fileURLToPath(new URL('../../../apps/cli/dev/orders-service.mjs', import.meta.url));
const ticks = 100; // USER_HZ on Linux

const server = await startServer();
const dir = await makeTempDir('footprint');

async function node(id: string): Promise<{ child: ChildNode; servicePort: number; httpPort: number }> {
  const dataDir = join(dir, id);
  const servicePort = await freePort();
  const httpPort = await freePort();
  const db = join(dataDir, 'orders.db');
  const cfg = join(dir, `${id}.yaml`);
  writeFileSync(
    cfg,
    `platform: fp
node: { id: ${id} }
nats: { servers: [${server.url}] }
http: { host: 127.0.0.1, port: ${httpPort} }
dataDir: ${dataDir}
log: { level: warn }
apps:
  orders:
    mode: active-passive
    sqlite: { path: ${JSON.stringify(db)}, snapshotIntervalMs: 60000, worker: true }
    backend:
      type: process
      options:
        command: ${JSON.stringify(process.execPath)}
        args: [${JSON.stringify(service)}]
        env: { PORT: "${servicePort}", DB: ${JSON.stringify(db)}, NODE_ID: ${id} }
        health: { type: http, url: "http://127.0.0.1:${servicePort}/health" }
  workers:
    mode: pool
  scheduler:
    mode: active-passive
`,
  );
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

interface Phase {
  cpuPct: number;
  rssStartMiB: number;
  rssEndMiB: number;
  rssMaxMiB: number;
  rssGrowth: number;
  samples: Array<{ s: number; rssMiB: number; cpuPct: number }>;
}

async function measure(pid: number, during: (stop: () => boolean) => Promise<void>): Promise<Phase> {
  let stopped = false;
  const work = during(() => stopped);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const start = usage(pid);
  const tStart = performance.now();
  const samples: Phase['samples'] = [];
  let prev = { ...start, t: tStart };
  while (performance.now() - t0 < PHASE_MS) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const u = usage(pid);
    const t = performance.now();
    samples.push({
      s: Math.round((t - tStart) / 1000),
      rssMiB: +u.rssMiB.toFixed(1),
      cpuPct: +((100 * (u.cpuS - prev.cpuS)) / ((t - prev.t) / 1000)).toFixed(2),
    });
    prev = { ...u, t };
  }
  stopped = true;
  await work;
  const end = usage(pid);
  const seconds = (performance.now() - tStart) / 1000;
  return {
    cpuPct: +((100 * (end.cpuS - start.cpuS)) / seconds).toFixed(3),
    rssStartMiB: +start.rssMiB.toFixed(1),
    rssEndMiB: +end.rssMiB.toFixed(1),
    rssMaxMiB: Math.max(...samples.map((x) => x.rssMiB)),
    rssGrowth: +((end.rssMiB - start.rssMiB) / start.rssMiB).toFixed(3),
    samples,
  };
}

try {
  const a = await node('a');
  // The measured node leads (it started first); b follows as the replica during the load phase.
  const idle = await measure(a.child.pid, async () => undefined);
  const b = await node('b');
  let placed = 0;
  let failed = 0;
  const load = await measure(a.child.pid, async (stop) => {
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
      idle: {
        cpuPct: idle.cpuPct,
        rssStartMiB: idle.rssStartMiB,
        rssEndMiB: idle.rssEndMiB,
        rssGrowth: idle.rssGrowth,
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
