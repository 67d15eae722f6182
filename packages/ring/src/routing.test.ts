import { createRpcClient, createRpcServer, type RpcClient, type RpcServer } from '@gc/rpc';
import { waitFor } from '@gc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { RingErrorCode } from './errors.js';
import { openRingObserver } from './observer.js';
import { createRingRouter } from './router.js';
import { rejection, useRingServer, type Members } from './test/helpers.js';
import type { Ring } from './types.js';

const platform = 'rr';
const rs = useRingServer(platform);
let m: Members;
const closers: Array<() => Promise<unknown>> = [];
let seq = 0;
// Runs before useRingServer's afterEach (the last registered first): the RPC ends, then the members.
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

/** A member plus its RPC server: `who` answers with the node, its partition and epoch, checking ownership. */
async function member(
  id: string,
  opts: Parameters<Members['start']>[1] = {},
  work?: (key: string) => Promise<void>,
) {
  const ring = await m.start(id, opts);
  const server: RpcServer = createRpcServer(m.conns.get(id)!, {
    platform,
    app: m.app,
    nodeId: id,
    admitKey: ring.admit,
  });
  server.handle('who', async ({ key }: { key: string }) => {
    if (!ring.owns(key)) throw new Error(`executed by a non-owner: ${id}`);
    const p = ring.partitionOf(key);
    const epoch = ring.epochOf(p);
    await work?.(key);
    return { node: id, p, epoch };
  });
  await server.refresh();
  closers.push(() => server.close(100));
  return { ring, server };
}

async function client(opts: { holdTimeoutMs?: number; maxHeldCalls?: number } = {}): Promise<RpcClient> {
  const nc = await m.conn('client');
  const router = await createRingRouter(nc, { platform, ...opts });
  const c = createRpcClient(nc, {
    platform,
    route: router.route,
    retry: { retries: 5, initialDelayMs: 5, maxDelayMs: 50 },
  });
  closers.push(
    () => c.close(),
    () => router.close(),
  );
  return c;
}

describe('key routing to ring owners (real nats-server)', () => {
  it('closed() of a member, a router and an observer: pending until close(), resolved after it', async () => {
    m = rs.members(`closed${++seq}`);
    const a = await m.start('a', { partitions: 8 });
    await m.converged();
    const nc = await m.conn('closer');
    const router = await createRingRouter(nc, { platform });
    expect(await router.route(m.app, 'user:1')).toBe('a'); // opens the app's view
    const obs = await openRingObserver(nc, { platform, app: m.app });
    const closed: string[] = [];
    void a.closed().then(() => closed.push('member'));
    void router.closed().then(() => closed.push('router'));
    void obs.closed().then(() => closed.push('observer'));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toEqual([]);
    await router.close();
    expect(closed).toEqual(['router']);
    await obs.close();
    expect(closed).toEqual(['router', 'observer']);
    await m.stop('a');
    expect(closed).toEqual(['router', 'observer', 'member']);
    await Promise.all([router.close(), obs.close(), a.close()]);
  });

  it('routes every key to the owner of its partition, from a process that is not a member', async () => {
    m = rs.members(`route${++seq}`);
    const a = await member('a', { partitions: 32 });
    await member('b', { partitions: 32 });
    await member('c', { partitions: 32 });
    await m.converged();
    const api = (await client()).api(m.app);
    for (let i = 0; i < 100; i++) {
      const key = `user:${i}`;
      const r = await api.call<{ node: string; p: number }>('who', { key }, { to: { key } });
      expect(r.node).toBe(a.ring.ownerOf(key));
      expect(r.p).toBe(a.ring.partitionOf(key));
    }
    // An app without a ring falls back to @gc/rpc's rendezvous hashing (the router answers undefined).
    const plain = createRpcServer(m.conns.get('a')!, { platform, app: 'plain', nodeId: 'p1' });
    plain.handle('who', () => 'p1');
    await plain.refresh();
    closers.push(() => plain.close(100));
    expect(await (await client()).api('plain').call('who', null, { to: { key: 'x' } })).toBe('p1');
    // ring.route serves the member's own app and leaves others to the default.
    expect(await a.ring.route(m.app, 'user:1')).toBe(a.ring.ownerOf('user:1'));
    expect(a.ring.route('other-app', 'x')).toBeUndefined();
  });

  it('drains a hand-off: the call in flight completes on the old owner, calls during the move on the new one', async () => {
    m = rs.members(`drain${++seq}`);
    let release!: () => void;
    const latch = new Promise<void>((r) => (release = r));
    const log: string[] = [];
    const slowKey = 'slow-key';
    const hooks = (id: string) => ({
      partitions: 8,
      onOwn: (p: number) => void log.push(`own ${p} ${id}`),
      onRelease: (p: number) => void log.push(`release ${p} ${id}`),
    });
    const a = await member('a', hooks('a'), async (key) => {
      if (key === slowKey) {
        log.push('slow call running on a');
        await latch;
        log.push('slow call done on a');
      }
    });
    await m.converged();
    const b = await member('b', hooks('b'));
    await m.converged();
    const p = a.ring.partitionOf(slowKey);
    const from = a.ring.ownerOf(slowKey)!;
    const api = (await client()).api(m.app);
    // If b owns the slow key's partition, make a own it first (the slow handler lives on a).
    if (from !== 'a') {
      await a.ring.pin(p, 'a');
      await waitFor(() => a.ring.ownsPartition(p), { timeoutMs: 5000 });
    }
    const inFlight = api.call<{ node: string; epoch: number }>(
      'who',
      { key: slowKey },
      { to: { key: slowKey } },
    );
    await waitFor(() => log.includes('slow call running on a'), { timeoutMs: 5000 });
    // Start the move to b while the call runs on a.
    await a.ring.pin(p, 'b');
    await waitFor(
      () => m.events.some((e) => e.type === 'release-start' && e.partition === p && e.node === 'a'),
      {
        timeoutMs: 5000,
      },
    );
    // Calls arriving now are refused by a (moving) and held by the caller for b.
    const during = [0, 1, 2].map(() =>
      api
        .call<{ node: string; epoch: number }>('who', { key: `${slowKey}` }, { to: { key: slowKey } })
        .catch((e: Error) => e),
    );
    await new Promise((r) => setTimeout(r, 150));
    expect(b.ring.ownsPartition(p)).toBe(false); // a has not released: its call is still in flight
    expect(log).not.toContain(`own ${p} b`);
    release();
    const first = await inFlight;
    expect(first.node).toBe('a');
    const later = await Promise.all(during);
    for (const r of later) {
      expect(r).not.toBeInstanceOf(Error);
      expect((r as { node: string }).node).toBe('b');
      expect((r as { epoch: number }).epoch).toBeGreaterThan(first.epoch);
    }
    // Order on the record: the slow call finished, then a released, then b owned.
    const i1 = log.indexOf('slow call done on a');
    const i2 = log.lastIndexOf(`release ${p} a`);
    const i3 = log.lastIndexOf(`own ${p} b`);
    expect(i1).toBeLessThan(i2);
    expect(i2).toBeLessThan(i3);
  });

  it('a call held past holdTimeoutMs fails with GC_RING_UNAVAILABLE; a full hold buffer fails at once', async () => {
    m = rs.members(`hold${++seq}`);
    let stuck = true;
    const r: { ring?: Ring } = {};
    r.ring = (
      await member('a', {
        partitions: 4,
        onOwn: async (_p, { signal }) => {
          while (stuck && !signal.aborted) await new Promise((x) => setTimeout(x, 10));
        },
      })
    ).ring;
    await waitFor(() => r.ring!.snapshot().states.every((s) => s === 'owning'), { timeoutMs: 5000 });
    const api = (await client({ holdTimeoutMs: 300, maxHeldCalls: 1 })).api(m.app);
    const t0 = performance.now();
    const held = api.call('who', { key: 'k1' }, { to: { key: 'k1' } });
    const full = await rejection(api.call('who', { key: 'k2' }, { to: { key: 'k2' } }));
    expect(full.code).toBe(RingErrorCode.HoldBufferFull);
    const err = await rejection(held);
    expect(err.code).toBe(RingErrorCode.Unavailable);
    expect(err.message).toMatch(/record owning by a/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    stuck = false;
    await m.converged();
    expect((await api.call<{ node: string }>('who', { key: 'k1' }, { to: { key: 'k1' } })).node).toBe('a');
  });
});
