import { connect, silentLogger } from '@gc/core';
import { createRpcClient, type RpcClient } from '@gc/rpc';
import { spawnNode, startServer, waitFor, type ChildNode, type NatsServer } from '@gc/testkit';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Three gc nodes in separate processes on one real nats-server. The election is the real
// @gc/election; the RPC servers follow it through isLeader()/epoch() and refresh() on its events.
const entry = new URL('./fixtures/rpc-node.ts', import.meta.url).pathname;
const TTL_MS = 1500;

interface NodeMsg {
  type: string;
  node: string;
  epoch?: number;
  key?: string;
}

let server: NatsServer;
let nodes: ChildNode[] = [];
let nc: NatsConnection;
let rpc: RpcClient;

const allMessages = () => nodes.flatMap((n) => n.messages<NodeMsg>());

beforeAll(async () => {
  server = await startServer();
  nodes = ['n1', 'n2', 'n3'].map((id) =>
    spawnNode(entry, {
      env: { NATS_URL: server.url, NODE_ID: id, TTL_MS: String(TTL_MS) },
      label: `rpc-${id}`,
    }),
  );
  await Promise.all(nodes.map((n) => n.waitForMessage<NodeMsg>((m) => m.type === 'ready', 30_000, 'ready')));
  nc = await connect({ servers: server.url, name: 'e2e-client', reconnectTimeWaitMs: 100 });
  rpc = createRpcClient(nc, {
    platform: 'e2e',
    logger: silentLogger,
    retry: { retries: 20, initialDelayMs: 50, maxDelayMs: 400 },
  });
});

afterAll(async () => {
  await rpc?.close();
  await nc?.close();
  await Promise.all(nodes.map((n) => n.stop()));
  await server?.close();
});

describe('RPC across processes (real nats-server, real election)', () => {
  it("to: 'any' spreads calls over the three pool instances", async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 150; i++) {
      const who = await rpc.api('pool').call<string>('who', i);
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['n1', 'n2', 'n3']);
    for (const c of counts.values()) expect(c).toBeGreaterThanOrEqual(15);
  });

  it("kill -9 of the leader: the standby that wins the election serves to: 'leader'", async () => {
    const first = await waitFor(() => allMessages().find((m) => m.type === 'acquired'), {
      timeoutMs: 10_000,
      message: 'a leader',
    });
    const a = await rpc.api('single').call<{ node: string; epoch: number }>('who', null, { to: 'leader' });
    expect(a).toEqual({ node: first.node, epoch: first.epoch });
    expect(rpc.leaderEpoch('single')).toBe(first.epoch);

    const victim = nodes.find((n) => n.label === `rpc-${first.node}`)!;
    const t0 = performance.now();
    await victim.kill('SIGKILL');
    // Calls keep retrying (no instance / not leader: the handler did not run) until the new leader serves.
    const b = await rpc
      .api('single')
      .call<{ node: string; epoch: number }>('who', null, { to: 'leader', timeoutMs: 1000, retries: 40 });
    const tookMs = performance.now() - t0;
    expect(b.node).not.toBe(first.node);
    expect(b.epoch).toBeGreaterThan(first.epoch!);
    expect(rpc.leaderEpoch('single')).toBe(b.epoch);
    expect(tookMs).toBeLessThan(TTL_MS * 4);
    nodes = nodes.filter((n) => n !== victim);
  });

  it('an idempotent call retried through a nats-server restart executes exactly once', async () => {
    // Each attempt waits 500 ms and the handler takes 800 ms: the call can only succeed through retries.
    const before = allMessages().filter((m) => m.type === 'executed').length;
    const call = rpc
      .api('ledger')
      .call('transfer', { cents: 1200 }, { idempotencyKey: 'e2e-tx-1', timeoutMs: 500, retries: 30 });
    await waitFor(() => allMessages().filter((m) => m.type === 'executed').length > before, {
      timeoutMs: 10_000,
      message: 'the transfer started',
    });
    await server.restart();
    const result = await call;
    expect(result).toMatchObject({ ok: true, cents: 1200 });
    // A repeat after the fact also gets the stored result.
    expect(
      await rpc
        .api('ledger')
        .call('transfer', { cents: 1200 }, { idempotencyKey: 'e2e-tx-1', timeoutMs: 3000 }),
    ).toEqual(result);
    const executed = allMessages().filter((m) => m.type === 'executed' && m.key === 'e2e-tx-1');
    expect(executed).toHaveLength(1);
  });
});
