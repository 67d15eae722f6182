import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  waitFor,
  addressesOf,
  arpingUnavailableReason,
  createLan,
  httpGetFrom,
  neighbourOf,
  netnsUnavailableReason,
  spawnInNetns,
  type NetnsNode,
  type TestHost,
  type TestLan,
} from '@gc/testkit';
import { livePidsInGroup } from './proc.js';

// An active-passive app on two "hosts" (network namespaces A and B) with a client host C: each
// node runs the active coordinator with a real VIP and a real process backend inside its
// namespace. C reaches the service at the VIP; failover moves both.
const skipReason = netnsUnavailableReason() ?? arpingUnavailableReason();
if (skipReason) console.warn(`[backends failover e2e] skipped: ${skipReason}`);

const nodeEntry = new URL('../../packages/backends/bench/_active-node.ts', import.meta.url).pathname;

interface Active {
  type: 'active';
  totalMs: number;
  phases: Array<{ phase: string; durationMs: number }>;
  backendPid: number;
}

describe.skipIf(!!skipReason)('active-passive failover: VIP and backend move together', () => {
  let lan: TestLan;
  let A: TestHost, B: TestHost, C: TestHost;
  let vip: string;
  const nodes: NetnsNode[] = [];
  const groups: number[] = [];
  beforeAll(() => {
    lan = createLan(3, 2);
    [A, B, C] = lan.hosts as [TestHost, TestHost, TestHost];
    vip = '10.250.2.200';
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    for (const g of groups) {
      try {
        process.kill(-g, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    lan?.close();
  });

  async function startNode(host: TestHost): Promise<NetnsNode> {
    const node = spawnInNetns(host.netns, nodeEntry, { VIP_ADDRESS: vip, SERVICE_PORT: '8080' });
    nodes.push(node);
    await node.waitForMessage<{ type: string }>((m) => m.type === 'ready', 30_000);
    return node;
  }

  async function activate(node: NetnsNode, epoch: number): Promise<Active> {
    const from = node.messages().length;
    node.send({ cmd: 'activate', epoch });
    const m = await node.waitForMessage<{ type: string; message?: string }>(
      (x) => x.type === 'active' || x.type === 'error',
      30_000,
      from,
    );
    expect(m.type, m.message).toBe('active');
    groups.push((m as Active).backendPid);
    return m as Active;
  }

  it('graceful hand-over: A stops its service and releases the VIP, B takes both, C follows', async () => {
    const [a, b] = await Promise.all([startNode(A), startNode(B)]);
    const ra = await activate(a, 1);
    expect(ra.phases.map((p) => p.phase)).toEqual(['vip', 'backend']);
    expect(addressesOf(A)).toContain(vip);
    expect(httpGetFrom(C, `http://${vip}:8080/`)).toBe(`ok ${ra.backendPid}`);
    expect(neighbourOf(C, vip)?.mac).toBe(A.mac);

    await a.kill('SIGTERM'); // shutdown: the coordinator runs the passive sequence
    expect((await a.exited).code).toBe(0);
    expect(addressesOf(A)).not.toContain(vip);
    expect(livePidsInGroup(ra.backendPid)).toEqual([]);

    const rb = await activate(b, 2);
    await waitFor(() => neighbourOf(C, vip)?.mac === B.mac, {
      timeoutMs: 5000,
      message: "C's ARP entry follows B",
    });
    expect(httpGetFrom(C, `http://${vip}:8080/`)).toBe(`ok ${rb.backendPid}`);
    expect(addressesOf(A)).not.toContain(vip);

    // And back: B demotes (passive sequence without exiting), A's replacement node activates.
    const from = b.messages().length;
    b.send({ cmd: 'deactivate' });
    await b.waitForMessage<{ type: string }>((m) => m.type === 'passive', 15_000, from);
    expect(addressesOf(B)).not.toContain(vip);
    expect(livePidsInGroup(rb.backendPid)).toEqual([]);
    const a2 = await startNode(A);
    const ra2 = await activate(a2, 3);
    await waitFor(() => neighbourOf(C, vip)?.mac === A.mac, {
      timeoutMs: 5000,
      message: "C's ARP entry back to A",
    });
    expect(httpGetFrom(C, `http://${vip}:8080/`)).toBe(`ok ${ra2.backendPid}`);
    await a2.kill('SIGTERM');
    await b.kill('SIGTERM');
    expect(addressesOf(A)).not.toContain(vip);
  });

  it('host A dies (kill -9 of the node and its service): B becomes active and C reaches B at the VIP', async () => {
    const [a, b] = await Promise.all([startNode(A), startNode(B)]);
    const ra = await activate(a, 10);
    expect(httpGetFrom(C, `http://${vip}:8080/`)).toBe(`ok ${ra.backendPid}`);

    // The whole host goes: the gc node and the service it ran.
    process.kill(-ra.backendPid, 'SIGKILL');
    await a.kill('SIGKILL');
    expect(httpGetFrom(C, `http://${vip}:8080/`)).toMatch(/^error /);

    const t0 = performance.now();
    const rb = await activate(b, 11);
    const ms = performance.now() - t0;
    await waitFor(() => neighbourOf(C, vip)?.mac === B.mac, {
      timeoutMs: 5000,
      message: "C's ARP entry follows B",
    });
    expect(httpGetFrom(C, `http://${vip}:8080/`)).toBe(`ok ${rb.backendPid}`);
    expect(ms).toBeLessThan(10_000);
    await b.kill('SIGTERM');
    expect(addressesOf(B)).not.toContain(vip);
    expect(livePidsInGroup(rb.backendPid)).toEqual([]);
  });
});
