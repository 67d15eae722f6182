import { connect, resourceNames, supports } from '@gc/core';
import { startServer } from '@gc/testkit';
import { Kvm } from '@nats-io/kv';
import { expect, it } from 'vitest';

// The smoke subset runs on every supported Node (20 and 24): a real server, a JetStream KV round trip.
it(`connects, checks the server and round-trips a KV value on Node ${process.version}`, async () => {
  const server = await startServer();
  const nc = await connect({ servers: server.url, name: 'smoke' });
  const bucket = resourceNames('smoke').app('orders').kv;
  const kv = await new Kvm(nc).create(bucket);
  await kv.put('k', 'v');
  expect(new TextDecoder().decode((await kv.get('k'))!.value)).toBe('v');
  expect(typeof supports(nc, 'per-key-ttl')).toBe('boolean');
  await nc.close();
  await server.close();
});
