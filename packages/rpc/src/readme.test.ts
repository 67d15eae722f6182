import { readFileSync } from 'node:fs';
import { connect } from '@gc/core';
import { startServer } from '@gc/testkit';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { createRpcClient, createRpcServer, rpcSubjects } from './index.js';

// The README's example, line for line (with the server URL of a test server), and the subject layout
// it documents.
it('runs the README example', async () => {
  const server = await startServer();
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const out: unknown[] = [];
  const log = (v: unknown) => out.push(v);

  const nc = await connect({ servers: server.url });
  const orders = createRpcServer(nc, { platform: 'shop', app: 'orders', nodeId: 'n1' });
  orders.handle('place', (o) => ({ id: `o-${o.sku}`, qty: o.qty }), {
    schema: z.object({ sku: z.string(), qty: z.number().int() }),
  });
  await orders.refresh(); // subscriptions are on the server
  const rpc = createRpcClient(nc, { platform: 'shop', caller: 'billing' });
  log(await rpc.api('orders').call('place', { sku: 'a1', qty: 2 }, { to: 'any', idempotencyKey: 'cart-9' }));
  await rpc.close();
  await orders.close();
  await nc.close();

  expect(out).toEqual([{ id: 'o-a1', qty: 2 }]);
  expect(readme).toContain("orders.handle('place', (o) => ({ id: `o-${o.sku}`, qty: o.qty })");
  await server.close();
});

it('names subjects as documented', () => {
  const s = rpcSubjects('shop', 'orders');
  expect(s.any('place')).toBe('shop.orders.rpc.place');
  expect(s.leader('place')).toBe('shop.orders.rpc.place.leader');
  expect(s.node('place', 'n1')).toBe('shop.orders.rpc.place.node.n1');
  expect(s.presence).toBe('shop.orders.rpc._.presence');
  expect(s.subscriptions).toMatchObject({ any: 'shop.orders.rpc.*', leader: 'shop.orders.rpc.*.leader' });
  expect(s.subscriptions.node('n1')).toBe('shop.orders.rpc.*.node.n1');
  expect(() => s.any('_')).toThrow(/invalid method name/);
  expect(() => rpcSubjects('shop', 'Orders')).toThrow(/invalid app name/);
});
