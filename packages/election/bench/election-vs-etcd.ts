// Benchmark `election-vs-etcd`: SIGKILL of the leader's process → another candidate is elected, gc's
// election (`@gc/election` on a 3-node JetStream cluster, R3 bucket) against etcd's election recipe
// (`concurrency.Election.Campaign` on a lease, etcd's v3election service, on a 3-member etcd cluster), all
// on loopback, at the same TTLs (2 s and 3 s), plus gc's fast failover at TTL 3 s. Every candidate is its
// own process (3 per side, each talking to its own server / member); all sides run side by side and are
// measured interleaved round by round (gc 2 s, etcd 2 s, gc 3 s, etcd 3 s, gc fast, gc 2 s, …), the first
// round a warm-up. The kill lands at a random point of the renew / keep-alive cycle.
//
// Bar: gc's default mode p50 ≤ 1.0 × etcd's p50 at the same TTL (both TTLs). `ratio` is the larger of the
// two p50 ratios. etcd comes from Debian (`scripts/provision-peer.sh etcd-server`, root only); without
// it the bench prints `skipped` with the reason.
//
// env: GC_BENCH_ROUNDS (default 9 measured rounds).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, freePort, spawnNode, startCluster, type ChildNode } from '@gc/testkit';
import { median, progress, r3, report } from './_util.js';

const BENCH = 'election-vs-etcd';
const ROUNDS = Number(process.env.GC_BENCH_ROUNDS ?? 9);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = fileURLToPath(new URL('../../../', import.meta.url));

// ---- the peer: etcd from Debian -------------------------------------------------------------------

function etcdUnavailableReason(): string | undefined {
  const have = () => spawnSync('etcd', ['--version'], { encoding: 'utf8' }).status === 0;
  if (have()) return undefined;
  const r = spawnSync(join(root, 'scripts/provision-peer.sh'), ['etcd-server'], {
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (r.status === 0 && have()) return undefined;
  const why = (r.stderr ?? '').trim().split('\n').at(-1) || r.error?.message || `exit ${r.status}`;
  return `etcd (Debian etcd-server) is not installed and could not be installed: ${why}`;
}

/** A 3-member etcd cluster on loopback, each member in its own process group and data dir. */
class EtcdCluster {
  readonly procs: ChildProcess[] = [];
  readonly clientUrls: string[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'gc-bench-etcd-'));
  readonly logs: string[][] = [];
  version = '';

  async start(): Promise<void> {
    const peerPorts = [await freePort(), await freePort(), await freePort()];
    const clientPorts = [await freePort(), await freePort(), await freePort()];
    const initial = peerPorts.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(',');
    this.version = /etcd Version: (\S+)/.exec(
      spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout,
    )![1]!;
    for (let i = 0; i < 3; i++) {
      const client = `http://127.0.0.1:${clientPorts[i]}`;
      const peer = `http://127.0.0.1:${peerPorts[i]}`;
      const log: string[] = [];
      this.logs.push(log);
      const p = spawn(
        'etcd',
        [
          `--name=m${i + 1}`,
          `--data-dir=${join(this.dir, `m${i + 1}`)}`,
          `--listen-client-urls=${client}`,
          `--advertise-client-urls=${client}`,
          `--listen-peer-urls=${peer}`,
          `--initial-advertise-peer-urls=${peer}`,
          `--initial-cluster=${initial}`,
          '--initial-cluster-state=new',
          `--initial-cluster-token=gc-bench-${process.pid}`,
          '--logger=zap',
          '--log-outputs=stderr',
          '--log-level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
      );
      p.stderr.on('data', (d: Buffer) => {
        log.push(d.toString());
        if (log.length > 200) log.splice(0, 100);
      });
      this.procs.push(p);
      this.clientUrls.push(client);
    }
    // Ready: every member answers /health and one of them reports a Raft leader.
    const deadline = performance.now() + 30_000;
    for (;;) {
      const ok = await Promise.all(
        this.clientUrls.map((u) =>
          fetch(`${u}/health`, { signal: AbortSignal.timeout(1000) })
            .then((r) => r.json() as Promise<{ health?: string }>)
            .then((j) => j.health === 'true')
            .catch(() => false),
        ),
      );
      if (ok.every(Boolean)) break;
      if (performance.now() > deadline) {
        throw new Error(
          `etcd cluster not healthy within 30 s:\n${this.logs.map((l) => l.join('').slice(-1500)).join('\n---\n')}`,
        );
      }
      await sleep(200);
    }
  }

  /** SIGTERM, SIGKILL after a grace period (a member whose peers are gone can hang on shutdown), rm -rf. */
  async close(): Promise<void> {
    for (const p of this.procs) this.#signal(p, 'SIGTERM');
    const deadline = performance.now() + 3000;
    while (
      this.procs.some((p) => p.exitCode === null && p.signalCode === null) &&
      performance.now() < deadline
    )
      await sleep(50);
    this.killSync();
  }

  killSync(): void {
    for (const p of this.procs) this.#signal(p, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  #signal(p: ChildProcess, s: NodeJS.Signals): void {
    if (p.exitCode !== null || p.signalCode !== null) return;
    try {
      process.kill(-p.pid!, s);
    } catch {
      // already gone
    }
  }
}

// ---- one side: 3 candidate processes of one election ----------------------------------------------

interface Msg {
  type: string;
  at: number;
  grantedTtlS?: number;
}

class Side {
  readonly times: number[] = [];
  readonly candidates = new Map<string, { child: ChildNode; startedAt: number }>();
  /** Grace after a (re)start before this side's next kill: the newcomer is in line (gc fast failover
   * counts "no responders" only renewDeadline after it connected). */
  readonly settleMs: number;
  grantedTtlS: number | undefined;

  constructor(
    readonly name: string,
    readonly ttlMs: number,
    readonly spawnCandidate: (index: number, label: string) => ChildNode,
  ) {
    this.settleMs = (ttlMs * 2) / 3 + 500;
  }

  async start(index: number): Promise<void> {
    const label = `${this.name}-${index}`;
    const child = this.spawnCandidate(index, label);
    this.candidates.set(label, { child, startedAt: performance.now() });
    const ready = await child.waitForMessage<Msg>((m) => m.type === 'ready', 30_000, 'ready');
    if (ready.grantedTtlS !== undefined) this.grantedTtlS = ready.grantedTtlS;
  }

  #lastElected(c: ChildNode): number {
    return (
      c
        .messages<Msg>()
        .filter((m) => m.type === 'elected')
        .at(-1)?.at ?? 0
    );
  }

  /** The live candidate elected last. */
  async leader(): Promise<string> {
    const deadline = performance.now() + 3 * this.ttlMs + 10_000;
    while (performance.now() < deadline) {
      let best: [string, number] | undefined;
      for (const [label, { child }] of this.candidates) {
        const t = child.running ? this.#lastElected(child) : 0;
        if (t > 0 && (!best || t > best[1])) best = [label, t];
      }
      if (best) return best[0];
      await sleep(20);
    }
    throw new Error(`${this.name}: no candidate elected within ${3 * this.ttlMs + 10_000} ms`);
  }

  async round(r: number): Promise<number> {
    const leader = await this.leader();
    const newest = Math.max(...[...this.candidates.values()].map((c) => c.startedAt));
    const settle = newest + this.settleMs - performance.now();
    if (settle > 0) await sleep(settle);
    // Kill at a random point of the renew / keep-alive cycle (both are TTL / 3).
    await sleep(200 + Math.random() * (this.ttlMs / 3));
    const victim = this.candidates.get(leader)!;
    const killedAt = now();
    await victim.child.kill('SIGKILL');
    const limit = 3 * this.ttlMs + 5000;
    const deadline = performance.now() + limit;
    let next: [string, number] | undefined;
    while (!next && performance.now() < deadline) {
      for (const [label, { child }] of this.candidates) {
        if (label === leader || !child.running) continue;
        const t = this.#lastElected(child);
        if (t > killedAt) next = [label, t];
      }
      if (!next) await sleep(5);
    }
    if (!next) {
      const out = [...this.candidates.values()].map(
        (c) => `--- ${c.child.label}\n${c.child.output().slice(-1500)}`,
      );
      throw new Error(`${this.name}: nobody elected within ${limit} ms of the kill\n${out.join('\n')}`);
    }
    const ms = next[1] - killedAt;
    if (r > 0) this.times.push(ms); // round 0 is the warm-up
    progress(
      `round ${r} ${this.name.padEnd(9)}: ${leader} killed -> ${next[0]} elected in ${ms.toFixed(0)} ms${r === 0 ? ' (warm-up)' : ''}`,
    );
    // The killed candidate comes back (at the end of the line) under the same label.
    this.candidates.delete(leader);
    await this.start(Number(leader.split('-').at(-1)));
    return ms;
  }

  async close(): Promise<void> {
    await Promise.all([...this.candidates.values()].map((c) => c.child.stop(2000)));
  }
}

// ---- the run ---------------------------------------------------------------------------------------

const skipped = etcdUnavailableReason();
if (skipped) {
  // The JSON line of a bench that could not run: no figures, no ratio, not passed.
  console.log(
    JSON.stringify({ bench: BENCH, skipped, ratio: null, bar: { gcDefaultP50VsEtcdP50: 1.0 }, pass: false }),
  );
  process.exit(0);
}

const etcd = new EtcdCluster();
let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
const sides: Side[] = [];
process.once('exit', () => etcd.killSync());
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

const gcEntry = fileURLToPath(new URL('./_vs-etcd-gc.ts', import.meta.url));
const etcdEntry = fileURLToPath(new URL('./_vs-etcd-etcd.ts', import.meta.url));
const stats = (xs: number[]) => ({
  p50: Math.round(median(xs)),
  max: Math.round(Math.max(...xs)),
  min: Math.round(Math.min(...xs)),
});
let result: Parameters<typeof report>[0];
try {
  cluster = await startCluster();
  await etcd.start();
  const urls = cluster.urls;
  const gcSide = (ttlMs: number, fast: boolean) =>
    new Side(fast ? `gc-fast-${ttlMs / 1000}s` : `gc-${ttlMs / 1000}s`, ttlMs, (i, label) =>
      spawnNode(gcEntry, {
        label,
        env: {
          NATS_URLS: [...urls.slice(i), ...urls.slice(0, i)].join(','),
          BUCKET: `bench_vs_etcd_${fast ? 'fast_' : ''}${ttlMs}`,
          NODE_ID: `n${i}`,
          TTL_MS: String(ttlMs),
          FAST: fast ? '1' : '0',
          GC_LOG_LEVEL: 'error',
        },
      }),
    );
  const etcdSide = (ttlMs: number) =>
    new Side(`etcd-${ttlMs / 1000}s`, ttlMs, (i, label) =>
      spawnNode(etcdEntry, {
        label,
        env: {
          ETCD_URL: etcd.clientUrls[i]!,
          ELECTION: `bench-vs-gc/${ttlMs}`,
          NODE_ID: label,
          TTL_S: String(ttlMs / 1000),
        },
      }),
    );
  const gc2 = gcSide(2000, false);
  const etcd2 = etcdSide(2000);
  const gc3 = gcSide(3000, false);
  const etcd3 = etcdSide(3000);
  const fast3 = gcSide(3000, true);
  sides.push(gc2, etcd2, gc3, etcd3, fast3);
  // Candidate 0 of each side starts first (and leads), then the other two join the line.
  for (const s of sides) await s.start(0);
  for (const s of sides) for (const i of [1, 2]) await s.start(i);
  const perRound = { ttl2: [] as number[], ttl3: [] as number[] };
  for (let r = 0; r <= ROUNDS; r++) {
    const a2 = await gc2.round(r);
    const b2 = await etcd2.round(r);
    const a3 = await gc3.round(r);
    const b3 = await etcd3.round(r);
    await fast3.round(r);
    if (r > 0) {
      perRound.ttl2.push(a2 / b2);
      perRound.ttl3.push(a3 / b3);
    }
  }
  const ratio2 = median(gc2.times) / median(etcd2.times);
  const ratio3 = median(gc3.times) / median(etcd3.times);
  const ratio = Math.max(ratio2, ratio3);
  result = {
    bench: BENCH,
    rounds: ROUNDS,
    ms: {
      gc2s: stats(gc2.times),
      etcd2s: stats(etcd2.times),
      gc3s: stats(gc3.times),
      etcd3s: stats(etcd3.times),
      gcFast3s: stats(fast3.times),
    },
    p50Ratio: {
      ttl2s: r3(ratio2),
      ttl3s: r3(ratio3),
      gcFast3sVsEtcd3s: r3(median(fast3.times) / median(etcd3.times)),
    },
    maxRatio: {
      ttl2s: r3(Math.max(...gc2.times) / Math.max(...etcd2.times)),
      ttl3s: r3(Math.max(...gc3.times) / Math.max(...etcd3.times)),
    },
    perRoundRatioMedian: { ttl2s: r3(median(perRound.ttl2)), ttl3s: r3(median(perRound.ttl3)) },
    etcdGrantedTtlS: { ttl2s: etcd2.grantedTtlS, ttl3s: etcd3.grantedTtlS },
    etcd: etcd.version,
    natsServer: cluster.servers[0]!.version,
    node: process.version,
    ratio: r3(ratio),
    bar: { gcDefaultP50VsEtcdP50: 1.0 },
    pass: ratio2 <= 1.0 && ratio3 <= 1.0,
  };
} finally {
  await Promise.allSettled(sides.map((s) => s.close()));
  await etcd.close();
  await cluster?.close();
  await cleanupAll();
}
report(result);
