// @gc/events + @gc/audit across processes: a durable worker SIGKILLed in the middle of its handler never
// acked the event, so another instance of the same durable gets it again after ackWaitMs; the completed
// job is audited by the node that did it and found with query() from another process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { connect } from '@gc/core';
import { createAudit } from '@gc/audit';
import { createEvents } from '@gc/events';
import { spawnNode, startServer, waitFor, type NatsServer } from '@gc/testkit';

const fixture = fileURLToPath(new URL('./fixtures/events-node.ts', import.meta.url));

interface Got {
  type: string;
  n: number;
  deliveries: number;
  node: string;
}

describe('durable events and audit across processes', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('an event whose handler was SIGKILLed is redelivered to another instance after ackWaitMs, then audited', async () => {
    const platform = 'pp-events';
    const env = { NATS_URL: server.url, PLATFORM: platform, APP: 'orders' };
    const workers = ['w1', 'w2'].map((id) =>
      spawnNode(fixture, { env: { ...env, NODE_ID: id }, label: `events-${id}` }),
    );
    await Promise.all(workers.map((w) => w.waitForMessage<Got>((m) => m.type === 'ready')));
    const nc = await connect({ servers: server.url });
    const publisher = await createEvents(nc, {
      platform,
      app: 'orders',
      nodeId: 'parent',
      maxBytes: 8 << 20,
    });
    await publisher.publish('job', { n: 1 });
    const first = await waitFor(() =>
      workers.find((w) => w.messages<Got>().some((m) => m.type === 'got' && m.n === 1)),
    );
    const other = workers.find((w) => w !== first)!;
    const killedAt = performance.now();
    await first.kill(); // in the middle of the handler: never acked
    const again = await other.waitForMessage<Got>((m) => m.type === 'got' && m.n === 1, 10_000);
    const tookMs = performance.now() - killedAt;
    console.log(
      `[events e2e] redelivered to ${again.node} ${Math.round(tookMs)} ms after the SIGKILL (ackWaitMs 1000)`,
    );
    expect(again.deliveries).toBe(2);
    expect(tookMs).toBeLessThan(1000 + 1500);
    const w2 = other;
    // Later jobs go to the live instance only, once each.
    for (let n = 2; n <= 5; n++) await publisher.publish('job', { n });
    await waitFor(() => w2.messages<Got>().filter((m) => m.type === 'got').length === 5);
    const audit = await createAudit(nc, { platform, nodeId: 'parent', maxBytes: 8 << 20 });
    const done = await waitFor(async () => {
      const r = await audit.query({ type: 'job.done', app: 'orders' });
      return r.length === 5 ? r : undefined;
    });
    expect(new Set(done.map((r) => r.node))).toEqual(new Set([again.node]));
    expect(done.map((r) => (r.data as { n: number }).n).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(done.find((r) => (r.data as { n: number }).n === 1)!.data).toMatchObject({ deliveries: 2 });
    await w2.stop();
    await publisher.close();
    await audit.close();
    await nc.close();
  });
});
