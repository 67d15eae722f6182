import { createPlatform, type Platform } from '@gc/platform';
import { makeTempDir, spawnNode, startServer, waitFor, type ChildNode, type NatsServer } from '@gc/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Msg {
  type: string;
  node: string;
  epoch?: number;
  count?: number;
  t: number;
}

let server: NatsServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

async function startNodes(platform: string, ids: string[]): Promise<Map<string, ChildNode>> {
  const nodes = new Map<string, ChildNode>();
  for (const id of ids) {
    const child = spawnNode(new URL('./fixtures/node.ts', import.meta.url).pathname, {
      label: `platform-${id}`,
      env: {
        PLATFORM: platform,
        NODE_ID: id,
        NATS_URL: server.url,
        DATA_DIR: await makeTempDir(`pe2e-${id}`),
        GC_LOG_LEVEL: 'warn',
      },
    });
    nodes.set(id, child);
  }
  for (const [id, c] of nodes)
    await c.waitForMessage<Msg>((m) => m.type === 'ready', 30_000, `node ${id} ready`);
  return nodes;
}

const messages = (nodes: Map<string, ChildNode>) => [...nodes.values()].flatMap((c) => c.messages<Msg>());

describe('three platforms in separate processes', () => {
  let caller: Platform;
  let nodes: Map<string, ChildNode>;

  beforeAll(async () => {
    nodes = await startNodes('pe2e', ['a', 'b', 'c']);
    caller = await createPlatform({
      name: 'pe2e',
      nodeId: 'tester',
      nats: { servers: server.url },
      http: false,
      dataDir: await makeTempDir('pe2e-tester'),
    });
  });
  afterAll(async () => {
    await caller.close();
    for (const c of nodes.values()) await c.stop();
  });

  it("to: 'any' spreads calls over the pool app on all three nodes", async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 90; i++) {
      const r = await caller.api('workers').call<{ node: string; result: number }>('work', i, { to: 'any' });
      expect(r.result).toBe(i + 1);
      seen.set(r.node, (seen.get(r.node) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const n of seen.values()) expect(n).toBeGreaterThan(5);
  });

  it("kill -9 of the leader: a standby runs onActive and to: 'leader' reaches it with a higher epoch", async () => {
    const first = await waitFor(
      () => caller.api('orders').call<{ node: string; epoch: number }>('whoami', undefined, { to: 'leader' }),
      {
        message: 'leader answers',
      },
    );
    const killedAt = Number(process.hrtime.bigint()) / 1e6;
    await nodes.get(first.node)!.kill('SIGKILL');
    const activated = await waitFor(
      () => messages(nodes).find((m) => m.type === 'active' && m.node !== first.node && m.t > killedAt),
      { timeoutMs: 10_000, message: 'onActive on a standby after kill -9' },
    );
    expect(activated.epoch).toBeGreaterThan(first.epoch);
    expect(activated.t - killedAt).toBeLessThan(1500 * 1.5 + 500);
    const second = await waitFor(
      () => caller.api('orders').call<{ node: string; epoch: number }>('whoami', undefined, { to: 'leader' }),
      {
        message: 'the new leader answers',
      },
    );
    expect(second).toEqual({ node: activated.node, epoch: activated.epoch });
  });

  it('a lock holder killed with SIGKILL loses the lock after its TTL; the next holder gets a higher epoch', async () => {
    const holderId = [...nodes.keys()].find((id) => nodes.get(id)!.running)!;
    const holder = nodes.get(holderId)!;
    holder.send({ cmd: 'lock' });
    const locked = await holder.waitForMessage<Msg>((m) => m.type === 'locked', 10_000, 'lock acquired');
    const locks = await caller.locks();
    expect(await locks.tryAcquire('maintenance')).toBeNull();
    await holder.kill('SIGKILL');
    const t0 = performance.now();
    const lease = await locks.acquire('maintenance', { ttlMs: 1500, waitMs: 10_000 });
    const waited = performance.now() - t0;
    expect(lease.epoch).toBeGreaterThan(locked.epoch!);
    expect(waited).toBeLessThan(1500 + 1000);
    await lease.release();
  });

  it('an idempotent call retried through a nats-server restart executes exactly once', async () => {
    const before = messages(nodes).filter((m) => m.type === 'paid').length;
    const call = caller
      .api('orders')
      .call<{ ok: boolean }>(
        'pay',
        { amount: 42 },
        { to: 'leader', idempotencyKey: 'order-42', timeoutMs: 2000, retries: 10 },
      );
    await server.restart('SIGKILL');
    expect((await call).ok).toBe(true);
    // A second call with the same key returns the stored result without running the handler.
    expect(
      (
        await caller
          .api('orders')
          .call<{ ok: boolean }>(
            'pay',
            { amount: 42 },
            { to: 'leader', idempotencyKey: 'order-42', retries: 10 },
          )
      ).ok,
    ).toBe(true);
    const paid = messages(nodes)
      .filter((m) => m.type === 'paid')
      .slice(before);
    expect(paid).toHaveLength(1);
  });
});
