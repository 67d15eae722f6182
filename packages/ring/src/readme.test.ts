import { readFileSync } from 'node:fs';
import { connect } from '@gc/core';
import { createRpcClient, createRpcServer } from '@gc/rpc';
import { startServer } from '@gc/testkit';
import { expect, it } from 'vitest';
import { createRing, createRingRouter, ringNames } from './index.js';

// The README's example, line for line (with a test server's URL and `log` for console.log), and the
// naming contract it documents.
it('runs the README example', async () => {
  const server = await startServer();
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const out: unknown[] = [];
  const log = (...v: unknown[]) => out.push(v);

  const nc = await connect({ servers: server.url });
  const cache = new Map<number, Map<string, string>>(); // partition → its entries
  const ring = await createRing(nc, {
    platform: 'shop',
    app: 'cache',
    nodeId: 'n1',
    onOwn: (p) => void cache.set(p, new Map()), // load the partition's state here
    onRelease: (p) => void cache.delete(p), // flush it here; calls for p are drained already
  });
  // Right after createRing, on the same connection: subscribed before this node's first claim is written.
  const rpcServer = createRpcServer(nc, {
    platform: 'shop',
    app: 'cache',
    nodeId: 'n1',
    admitKey: ring.admit,
  });
  rpcServer.handle('put', ({ key, value }: { key: string; value: string }) => {
    cache.get(ring.partitionOf(key))!.set(key, value);
    return { owner: 'n1', epoch: ring.epochOf(ring.partitionOf(key)) };
  });
  const router = await createRingRouter(nc, { platform: 'shop' });
  const rpc = createRpcClient(nc, { platform: 'shop', route: router.route });
  log(await rpc.api('cache').call('put', { key: 'user:42', value: 'x' }, { to: { key: 'user:42' } }));
  log(ring.ownerOf('user:42'), ring.partitions().length, ring.snapshot().counts);
  await rpc.close();
  await router.close();
  await ring.close(); // polite leave: hands every partition off first
  await rpcServer.close();
  await nc.close();

  expect(out[0]).toEqual([{ owner: 'n1', epoch: 1 }]);
  expect(out[1]).toEqual(['n1', 256, { n1: 256 }]);
  expect(readme).toContain(
    "await rpc.api('cache').call('put', { key: 'user:42', value: 'x' }, { to: { key: 'user:42' } });",
  );
  expect(readme).toContain('onRelease: (p) => void cache.delete(p)');
  await server.close();
});

it('names resources as documented', () => {
  const n = ringNames('shop', 'cache');
  expect(n.bucket).toBe('shop_cache_ring');
  expect([n.config, n.coordinator, n.map, n.pins]).toEqual(['config', 'coordinator', 'map', 'pins']);
  expect(n.member('n1')).toBe('members.n1');
  expect(n.partition(12)).toBe('p.12');
  expect(() => ringNames('shop', 'Cache')).toThrow(/invalid app name/);
});
