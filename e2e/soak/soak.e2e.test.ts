// R14: a soak. Three node processes (a replicated ledger whose every append is synchronous, a pool app, the
// example lock-file component) take a random fault every 5–15 s — kill -9, SIGSTOP/SIGCONT, a nats-server
// restart (SIGTERM or SIGKILL), a node's link cut — while a client appends continuously to the leader.
// Checked continuously: no acknowledged append is ever missing on the leader; there is a leader again within
// a bound after each fault; memory stays steady. 2 minutes by default; GC_LONG_TESTS=1 (or GC_SOAK_MS) runs
// 30 minutes and writes the report to docs/soak-report.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createRpcClient } from '@gc/rpc';
import { createAdminClient } from '@gc/platform';
import {
  ChaosProxy,
  makeTempDir,
  sleep,
  spawnNode,
  startServer,
  type ChildNode,
  type NatsServer,
  seededRandom,
} from '@gc/testkit';

const long = process.env.GC_LONG_TESTS === '1';
const SOAK_MS = Number(process.env.GC_SOAK_MS ?? (long ? 30 * 60_000 : 120_000));
const SEED = Number(process.env.GC_SEED ?? 14);
const fixture = fileURLToPath(new URL('./fixtures/node.ts', import.meta.url));
const now = () => Number(process.hrtime.bigint()) / 1e6;

let server: NatsServer | undefined;
let nc: NatsConnection | undefined;
const proxies: ChaosProxy[] = [];
afterAll(async () => {
  await nc?.close().catch(() => undefined);
  for (const p of proxies) await p.close();
  await server?.close();
});

interface Fault {
  at: number;
  kind: string;
  node?: string;
  leaderlessMs?: number;
}

function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function pct(values: number[], p: number): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

describe('R14: soak', () => {
  it(
    `keeps every acknowledged append and recovers from random faults for ${Math.round(SOAK_MS / 1000)} s`,
    async () => {
      const rnd = seededRandom(SEED);
      server = await startServer();
      nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const lockDir = await makeTempDir('soak-locks');
      const ids = ['a', 'b', 'c'];
      const dataDirs = new Map<string, string>();
      for (const id of ids) dataDirs.set(id, await makeTempDir(`soak-${id}`));
      const proxy = new Map<string, ChaosProxy>();
      for (const id of ids) {
        const p = await ChaosProxy.start({ target: { port: server.port } });
        proxies.push(p);
        proxy.set(id, p);
      }
      const nodes = new Map<string, ChildNode>();
      const births = new Map<string, number>();
      const start = (id: string) => {
        const c = spawnNode(fixture, {
          label: `soak-${id}`,
          env: {
            NATS_URL: proxy.get(id)!.url(),
            PLATFORM: 'soak',
            NODE_ID: id,
            DATA_DIR: dataDirs.get(id)!,
            LOCK_DIR: lockDir,
            GC_LOG_LEVEL: 'warn',
          },
        });
        nodes.set(id, c);
        births.set(id, now());
        return c;
      };
      for (const id of ids) start(id);
      await Promise.all(
        ids.map((id) => nodes.get(id)!.waitForMessage((m: { type: string }) => m.type === 'ready', 60_000)),
      );

      const rpc = createRpcClient(nc, { platform: 'soak', caller: 'soak-client', retry: { retries: 0 } });
      const acked: number[] = [];
      const latencies: number[] = [];
      let failures = 0;
      let lastOk = now();
      let maxGapMs = 0;
      let stop = false;
      let n = 0;
      const client = (async () => {
        while (!stop) {
          const t = now();
          try {
            await rpc.api('ledger').call('append', ++n, { to: 'leader', timeoutMs: 3000 });
            acked.push(n);
            latencies.push(now() - t);
            maxGapMs = Math.max(maxGapMs, now() - lastOk);
            lastOk = now();
          } catch {
            failures++;
            await sleep(50);
          }
        }
      })();

      // Asked in chunks: a 30-minute run acknowledges ~100k appends, more than one NATS message may carry.
      const missing = async (ns: number[]): Promise<number[]> => {
        const out: number[] = [];
        for (let from = 0; from < ns.length; from += 5000) {
          const chunk = ns.slice(from, from + 5000);
          let last: unknown;
          let answered = false;
          for (let i = 0; i < 40 && !answered; i++) {
            try {
              out.push(
                ...(await rpc
                  .api('ledger')
                  .call<number[]>('missing', chunk, { to: 'leader', timeoutMs: 5000 })),
              );
              answered = true;
            } catch (err) {
              last = err;
              await sleep(250);
            }
          }
          if (!answered)
            throw new Error(`no leader answered the check in 40 tries: ${(last as Error)?.message}`, {
              cause: last,
            });
        }
        return out;
      };

      const faults: Fault[] = [];
      const rss: Array<{ s: number; node: string; rssMiB: number; bornS: number }> = [];
      const t0 = now();
      let checked = 0;
      let nextFault = t0 + 5000 + rnd() * 10_000;
      let nextCheck = t0 + 10_000;
      while (now() - t0 < SOAK_MS) {
        await sleep(500);
        const s = Math.round((now() - t0) / 1000);
        if (s % 2 === 0)
          for (const [id, c] of nodes) {
            const r = c.running ? rssMiB(c.pid) : undefined;
            if (r)
              rss.push({
                s,
                node: id,
                rssMiB: +r.toFixed(1),
                bornS: Math.round((births.get(id)! - t0) / 1000),
              });
          }
        if (now() >= nextCheck) {
          // Every acknowledged append so far must be on the leader.
          const sample = acked.slice(-2000);
          const gone = await missing(sample);
          expect(gone, `acknowledged appends missing on the leader at ${s} s`).toEqual([]);
          checked += sample.length;
          nextCheck = now() + 10_000;
        }
        if (now() < nextFault) continue;
        nextFault = now() + 5000 + rnd() * 10_000;
        const id = ids[Math.floor(rnd() * ids.length)]!;
        const r = rnd();
        const fault: Fault = { at: Math.round((now() - t0) / 1000), kind: '', node: id };
        if (r < 0.3) {
          fault.kind = 'kill -9';
          await nodes.get(id)!.kill('SIGKILL');
          await sleep(1000);
          start(id);
        } else if (r < 0.55) {
          const ms = 1000 + Math.floor(rnd() * 3000);
          fault.kind = `SIGSTOP ${ms} ms`;
          nodes.get(id)!.pause();
          await sleep(ms);
          nodes.get(id)!.resume();
        } else if (r < 0.8) {
          const ms = 2000 + Math.floor(rnd() * 4000);
          fault.kind = `link cut ${ms} ms`;
          proxy.get(id)!.cut();
          await sleep(ms);
          proxy.get(id)!.heal();
        } else {
          const sig = rnd() < 0.5 ? 'SIGTERM' : 'SIGKILL';
          fault.kind = `nats-server ${sig} + restart`;
          delete fault.node;
          await server.restart(sig);
        }
        // Liveness: an append is acknowledged again within a bound after the fault.
        const before = acked.length;
        const tf = now();
        while (acked.length === before && now() - tf < 20_000) await sleep(50);
        fault.leaderlessMs = Math.round(now() - tf);
        if (acked.length === before) {
          const st = await createAdminClient(nc, 'soak').nodes(1000);
          const view = st.map((x) => ({
            node: x.nodeId,
            apps: x.apps.map((a) => ({
              name: a.name,
              role: a.role,
              leader: a.leader,
              epoch: a.epoch,
              repl: a.replication,
            })),
          }));
          const tails = [...nodes].map(([i, c]) => `--- ${i}\n${c.output().slice(-3000)}`).join('\n');
          throw new Error(
            `no acknowledged append within 20 s after ${fault.kind} on ${id} at ${fault.at} s\n${JSON.stringify(view, null, 1)}\n${tails}`,
          );
        }
        faults.push(fault);
      }
      stop = true;
      await client;
      const gone = await missing(acked);
      expect(gone, 'acknowledged appends missing at the end').toEqual([]);
      checked += acked.length;

      // Memory: for each node process that lived through most of the run, RSS at the end vs after its warm-up.
      const growth: Record<string, number> = {};
      for (const id of ids) {
        const mine = rss.filter(
          (x) =>
            x.node === id && x.bornS === Math.max(...rss.filter((y) => y.node === id).map((y) => y.bornS)),
        );
        if (mine.length < 20) continue;
        const warm = mine
          .slice(Math.floor(mine.length * 0.2), Math.floor(mine.length * 0.3))
          .map((x) => x.rssMiB);
        const end = mine.slice(-Math.max(3, Math.floor(mine.length * 0.1))).map((x) => x.rssMiB);
        growth[id] = +(pct(end, 50) / pct(warm, 50) - 1).toFixed(3);
      }
      const report = {
        soakMs: SOAK_MS,
        seed: SEED,
        faults: faults.length,
        byKind: faults.reduce<Record<string, number>>((m, f) => {
          const k = f.kind.replace(/ \d+ ms/, '');
          m[k] = (m[k] ?? 0) + 1;
          return m;
        }, {}),
        appendsAcknowledged: acked.length,
        appendsFailed: failures,
        acknowledgedChecked: checked,
        acknowledgedMissing: 0,
        maxGapBetweenAcksMs: Math.round(maxGapMs),
        recoveryAfterFaultMs: {
          p50: pct(
            faults.map((f) => f.leaderlessMs!),
            50,
          ),
          max: Math.max(...faults.map((f) => f.leaderlessMs!)),
        },
        appendLatencyMs: {
          p50: +pct(latencies, 50).toFixed(1),
          p99: +pct(latencies, 99).toFixed(1),
          max: +latencies.reduce((m, x) => Math.max(m, x), 0).toFixed(1),
        },
        rssGrowth: growth,
      };
      console.log(`R14 ${JSON.stringify(report)}`);
      if (long || process.env.GC_SOAK_REPORT) writeReport(report, faults, rss);
      for (const [id, g] of Object.entries(growth))
        expect(g, `RSS growth of ${id}`).toBeLessThan(long ? 0.1 : 0.3);
      await rpc.close();
      for (const c of nodes.values()) await c.stop();
    },
    SOAK_MS + 180_000,
  );
});

function writeReport(
  report: Record<string, unknown>,
  faults: Fault[],
  rss: Array<{ s: number; node: string; rssMiB: number }>,
) {
  const spark = (node: string) => {
    const xs = rss.filter((x) => x.node === node);
    const step = Math.max(1, Math.floor(xs.length / 60));
    const pts = xs.filter((_, i) => i % step === 0).map((x) => x.rssMiB);
    const lo = Math.min(...pts);
    const hi = Math.max(...pts);
    const bars = '▁▂▃▄▅▆▇█';
    return (
      pts.map((v) => bars[Math.round(((v - lo) / Math.max(1, hi - lo)) * 7)]).join('') + `  (${lo}–${hi} MiB)`
    );
  };
  const md = `# R14 soak report

Generated by \`GC_LONG_TESTS=1 pnpm exec vitest run --project e2e soak\` (e2e/soak/soak.e2e.test.ts) on ${new Date().toISOString()}.

\`\`\`json
${JSON.stringify(report, null, 2)}
\`\`\`

## Faults injected

| s | fault | node | next acknowledged append after (ms) |
| - | ----- | ---- | ----------------------------------- |
${faults.map((f) => `| ${f.at} | ${f.kind} | ${f.node ?? '-'} | ${f.leaderlessMs} |`).join('\n')}

## RSS over time (one character per sample window; a node restarted by a kill starts again low)

${['a', 'b', 'c'].map((id) => `- node ${id}: \`${spark(id)}\``).join('\n')}
`;
  writeFileSync(fileURLToPath(new URL('../../docs/soak-report.md', import.meta.url)), md);
}
