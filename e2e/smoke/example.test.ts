import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, spawnNode, startServer, waitFor } from '@gc/testkit';
import { expect, it } from 'vitest';

// The example under examples/orders, run as a user would run it, against a real nats-server.
it('the orders example serves HTTP on the leader and prices orders through the pool', async () => {
  const server = await startServer();
  const port = await freePort();
  const child = spawnNode(fileURLToPath(new URL('../../examples/orders/index.ts', import.meta.url)), {
    label: 'example-orders',
    env: {
      NATS_URL: server.url,
      NODE_ID: 'a',
      PORT: String(port),
      DATA_DIR: await makeTempDir('example'),
      PLATFORM: 'example',
    },
  });
  await waitFor(() => child.output().includes(`serving orders on port ${port}`), {
    timeoutMs: 30_000,
    message: `example active\n${child.output()}`,
  });
  const body = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as {
    servedBy: string;
    order: number;
    quote: { price: number; by: string };
  };
  expect(body).toMatchObject({ servedBy: 'a', order: 1, quote: { price: 28.5, by: 'a' } });
  const exit = await child.stop(10_000);
  expect(exit.code).toBe(0);
  expect(child.output()).toContain('a: passive (shutdown)');
  await server.close();
});
