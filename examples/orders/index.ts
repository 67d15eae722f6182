// An "orders" HTTP service that runs on exactly one node at a time (the elected leader), and a pool of
// "pricing" workers that every node runs. Start it on several machines (or shells) with the same
// PLATFORM and NATS_URL and different NODE_IDs; kill the leader and watch another node take over.
//
//   NATS_URL=nats://127.0.0.1:4222 NODE_ID=a PORT=3001 pnpm --filter @gc/example-orders start
//   NATS_URL=nats://127.0.0.1:4222 NODE_ID=b PORT=3002 pnpm --filter @gc/example-orders start
import { createServer, type Server } from 'node:http';
import { createPlatform } from '@gc/platform';

const nodeId = process.env.NODE_ID ?? 'a';
const platform = await createPlatform({
  name: process.env.PLATFORM ?? 'example',
  nodeId,
  nats: { servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
  labels: { zone: process.env.ZONE ?? 'local' },
  dataDir: process.env.DATA_DIR ?? `.gc/example/${nodeId}`,
});

// The pool app: every node prices orders.
const pricing = platform.app('pricing', { mode: 'pool' });
pricing.handle('quote', (order: { items: number }) => ({ price: order.items * 9.5, by: nodeId }));

// The singleton app: only the leader serves HTTP and takes orders.
const orders = platform.app('orders', { mode: 'active-passive', election: { ttlMs: 3000 } });
let http: Server | undefined;
orders.on('onActive', async ({ epoch }) => {
  const kv = await orders.kv();
  http = createServer((req, res) => {
    void (async () => {
      const quote = await platform
        .api('pricing')
        .call<{ price: number; by: string }>('quote', { items: 3 }, { to: 'any' });
      const count = Number((await kv.get('orders'))?.string() ?? '0') + 1;
      await kv.put('orders', String(count));
      res.end(JSON.stringify({ servedBy: nodeId, epoch, order: count, quote }));
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((resolve) => http!.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', resolve));
  console.log(`${nodeId}: active (epoch ${epoch}), serving orders on port ${process.env.PORT ?? 3000}`);
});
orders.on('onPassive', async ({ reason }) => {
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  http = undefined;
  console.log(`${nodeId}: passive (${reason})`);
});
orders.on('onLeaderChange', ({ leader, epoch }) =>
  console.log(`${nodeId}: leader of orders is ${leader ?? 'nobody'} (epoch ${epoch})`),
);
orders.handle('count', async () => Number((await (await orders.kv()).get('orders'))?.string() ?? '0'));

await platform.start();
console.log(`${nodeId}: started; health at ${platform.httpUrl()}/health`);
const stop = () => void platform.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
