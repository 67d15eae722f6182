// Benchmark `failover`: kill -9 of the leader process → a standby has run onActive (its `acquired` event),
// 20 rounds, TTL 3 s. Baseline: the configured TTL (the bound the design promises without fast failover).
// Bar: median ≤ 1.10 × TTL and max ≤ 1.25 × TTL.
import { spawnNode, startServer, waitFor, type ChildNode } from '@gc/testkit';
import { median, progress, r3, report } from './_util.js';

const TTL = 3000;
const ROUNDS = Number(process.env.GC_BENCH_ROUNDS ?? 20);
const server = await startServer();
const fixture = new URL('./_node.ts', import.meta.url).pathname;
const now = () => Number(process.hrtime.bigint()) / 1e6;
let seq = 0;

interface Msg {
  type: string;
  at: number;
  epoch?: number;
}

/** Starts a node; it counts as live (and may win) at once, `ready` resolves when it follows. */
function spawn(): { child: ChildNode; ready: Promise<unknown> } {
  const id = `n${++seq}`;
  const child = spawnNode(fixture, {
    env: { NATS_URL: server.url, BUCKET: 'bench_failover', NODE_ID: id, TTL_MS: String(TTL) },
    label: id,
  });
  live.add(child);
  return { child, ready: child.waitForMessage<Msg>((m) => m.type === 'ready', 30_000) };
}

const live = new Set<ChildNode>();
const lastActive = (c: ChildNode) =>
  c
    .messages<Msg>()
    .filter((m) => m.type === 'active')
    .at(-1)?.at ?? 0;
/** The live child that became active last: the leader. */
const leaderOf = () => [...live].sort((a, b) => lastActive(b) - lastActive(a))[0]!;
await spawn().ready;
await waitFor(() => [...live].some((c) => lastActive(c) > 0), { timeoutMs: 10_000, message: 'a leader' });
await spawn().ready;
const times: number[] = [];
try {
  for (let r = 0; r <= ROUNDS; r++) {
    // Kill at a random point of the renew cycle, as a crash would.
    await new Promise((res) => setTimeout(res, 500 + Math.random() * 1000));
    const leader = leaderOf();
    const killedAt = now();
    await leader.kill('SIGKILL');
    live.delete(leader);
    const next = spawn(); // the next standby starts while the failover runs (and may win the race)
    const at = await waitFor(() => [...live].map(lastActive).find((t) => t > killedAt), {
      timeoutMs: 3 * TTL,
      intervalMs: 5,
      message: `a standby active in round ${r}`,
    }).catch((err: unknown) => {
      for (const c of live) progress(`--- ${c.label}\n${c.output()}`);
      throw err;
    });
    const ms = at - killedAt;
    if (r > 0) times.push(ms); // round 0 is the warm-up
    progress(`round ${r}: failover ${ms.toFixed(0)} ms${r === 0 ? ' (warm-up)' : ''}`);
    await next.ready;
  }
} finally {
  await Promise.all([...live].map((c) => c.stop()));
  await server.close();
}
const med = median(times);
const max = Math.max(...times);
const pass = med <= 1.1 * TTL && max <= 1.25 * TTL;
report({
  bench: 'failover',
  rounds: times.length,
  ttlMs: TTL,
  baselineMs: TTL,
  medianMs: Math.round(med),
  maxMs: Math.round(max),
  minMs: Math.round(Math.min(...times)),
  maxRatio: r3(max / TTL),
  ratio: r3(med / TTL),
  bar: { median: 1.1, max: 1.25 },
  pass,
});
