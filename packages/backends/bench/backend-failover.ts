// backend-failover: kill -9 of the active node (its gc process and its service) → the standby has
// the VIP and its backend healthy. Two "hosts" A and B plus a client C in network namespaces on a
// bridge (addresses 10.250.3.x exist only there). Each round, interleaved with the baseline:
//   gc:       A active (VIP + process backend via the active coordinator); kill -9 A; as soon as
//             A's exit is seen, B activates (VIP acquire + ARP + backend start + healthy).
//   baseline: the same work by hand inside B (ip addr add, arping, spawn, poll HTTP), no gc.
// The detection here is the parent seeing the process exit; with the election the standby learns
// it from the lease (TTL), which the platform bench will add once election and backends are wired.
import { spawnSync } from 'node:child_process';
import {
  arpingUnavailableReason,
  createLan,
  httpGetFrom,
  netnsUnavailableReason,
  spawnInNetns,
  type NetnsNode,
  type TestHost,
} from '@gc/testkit';

const rounds = Number(process.argv[2] ?? 5);
const warmup = 1;
const activeNode = new URL('./_active-node.ts', import.meta.url).pathname;
const rawNode = new URL('./_raw-node.ts', import.meta.url).pathname;
const VIP = '10.250.3.200';
const PORT = 8080;
const ARP_COUNT = 3;

const skip = netnsUnavailableReason() ?? arpingUnavailableReason();
if (skip) {
  console.log(JSON.stringify({ bench: 'backend-failover', skipped: skip }));
  process.exit(0);
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
}
const stats = (xs: number[]) => ({ p50: pct(xs, 50), max: pct(xs, 100), min: pct(xs, 0) });

async function waitType<T>(n: NetnsNode, type: string, from: number): Promise<T> {
  const m = await n.waitForMessage<{ type: string; message?: string }>(
    (x) => x.type === type || x.type === 'error',
    30_000,
    from,
  );
  if (m.type === 'error') throw new Error(`node error: ${m.message}`);
  return m as T;
}

const lan = createLan(3, 3);
const [A, B, C] = lan.hosts as [TestHost, TestHost, TestHost];
const gc = {
  killToHealthy: [] as number[],
  detect: [] as number[],
  activate: [] as number[],
  vip: [] as number[],
  backend: [] as number[],
};
const raw: number[] = [];
let epoch = 0;
try {
  for (let r = 0; r < warmup + rounds; r++) {
    // gc round
    const a = spawnInNetns(A.netns, activeNode, {
      VIP_ADDRESS: VIP,
      SERVICE_PORT: String(PORT),
      ARP_COUNT: String(ARP_COUNT),
    });
    const b = spawnInNetns(B.netns, activeNode, {
      VIP_ADDRESS: VIP,
      SERVICE_PORT: String(PORT),
      ARP_COUNT: String(ARP_COUNT),
    });
    await Promise.all([waitType(a, 'ready', 0), waitType(b, 'ready', 0)]);
    a.send({ cmd: 'activate', epoch: ++epoch });
    const ra = await waitType<{ backendPid: number }>(a, 'active', 0);
    const t0 = performance.now();
    process.kill(-ra.backendPid, 'SIGKILL');
    process.kill(a.pid, 'SIGKILL');
    await a.exited;
    const tDetect = performance.now();
    const from = b.messages().length;
    b.send({ cmd: 'activate', epoch: ++epoch });
    const rb = await waitType<{
      backendPid: number;
      totalMs: number;
      phases: Array<{ phase: string; durationMs: number }>;
    }>(b, 'active', from);
    const tHealthy = performance.now();
    const answer = httpGetFrom(C, `http://${VIP}:${PORT}/`);
    if (answer !== `ok ${rb.backendPid}`)
      throw new Error(`client C got ${JSON.stringify(answer)} from the VIP, not B's service`);
    if (r >= warmup) {
      gc.killToHealthy.push(tHealthy - t0);
      gc.detect.push(tDetect - t0);
      gc.activate.push(rb.totalMs);
      gc.vip.push(rb.phases.find((p) => p.phase === 'vip')!.durationMs);
      gc.backend.push(rb.phases.find((p) => p.phase === 'backend')!.durationMs);
    }
    await b.kill('SIGTERM');
    spawnSync('ip', ['-n', A.netns, 'addr', 'del', `${VIP}/32`, 'dev', 'eth0']); // left by the killed A

    // baseline round
    const n = spawnInNetns(B.netns, rawNode);
    await waitType(n, 'ready', 0);
    n.send({ cmd: 'run', vip: VIP, port: PORT, arpCount: ARP_COUNT });
    const done = await waitType<{ ms: number }>(n, 'done', 0);
    if (r >= warmup) raw.push(done.ms);
    const f = n.messages().length;
    n.send({ cmd: 'clean' });
    await waitType(n, 'cleaned', f);
    await n.kill('SIGKILL');
  }
} finally {
  lan.close();
}

const ratio = Math.round((pct(gc.activate, 50) / pct(raw, 50)) * 100) / 100;
console.log(
  JSON.stringify({
    bench: 'backend-failover',
    rounds,
    arp_count: ARP_COUNT,
    kill_to_healthy_ms: stats(gc.killToHealthy),
    detect_ms: stats(gc.detect),
    activate_ms: stats(gc.activate),
    phase_vip_ms: stats(gc.vip),
    phase_backend_ms: stats(gc.backend),
    baseline_manual_ms: stats(raw),
    ratio,
    bar: 'activate p50 <= 1.5x the manual baseline',
    pass: ratio <= 1.5,
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
  }),
);
