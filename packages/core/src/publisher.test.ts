import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, TimeoutError } from './errors.js';
import { startServer, type NatsServer } from '@gc/testkit';
import { StreamPublishError, StreamPublisher } from './publisher.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'pubtest', subjects: ['pubtest.x'] });
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
});

const h = (msgId: string, expectLast?: number) => {
  const m = headers();
  m.append('Nats-Msg-Id', msgId);
  if (expectLast !== undefined) m.append('Nats-Expected-Last-Sequence', String(expectLast));
  return m;
};

describe('StreamPublisher', () => {
  it('resolves with the stream sequence, reports duplicates, and refuses a wrong expected last sequence', async () => {
    const p = new StreamPublisher(nc);
    const data = new TextEncoder().encode('x');
    const acks = await Promise.all([
      p.publish('pubtest.x', data, h('a', 0), 2000),
      p.publish('pubtest.x', data, h('b', 1), 2000),
    ]);
    expect(acks).toEqual([
      { seq: 1, duplicate: false },
      { seq: 2, duplicate: false },
    ]);
    expect(await p.publish('pubtest.x', data, h('b'), 2000)).toEqual({ seq: 2, duplicate: true });
    const err = await p.publish('pubtest.x', data, h('c', 1), 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamPublishError);
    expect((err as StreamPublishError).errCode).toBe(10071);
    expect((err as Error).message).toMatch(/wrong last sequence/);
    p.close();
  });

  it('rejects when no stream takes the subject, when no ack comes in time, and on close', async () => {
    const p = new StreamPublisher(nc);
    const data = new Uint8Array(1);
    await expect(p.publish('nostream.here', data, h('n'), 2000)).rejects.toThrow(/no responders/);
    // A plain subscriber that never answers: the publish times out.
    const silent = nc.subscribe('silent.subject');
    const t0 = performance.now();
    const err = await p.publish('silent.subject', data, h('s'), 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    const pending = p.publish('silent.subject', data, h('t'), 10_000);
    p.close();
    await expect(pending).rejects.toBeInstanceOf(ClosedError);
    await expect(p.publish('pubtest.x', data, h('u'), 1000)).rejects.toBeInstanceOf(ClosedError);
    silent.unsubscribe();
  });

  it('closed() is pending until close(), then resolved; close() twice is fine', async () => {
    const p = new StreamPublisher(nc);
    let settled = false;
    void p.closed().then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    p.close();
    p.close();
    await expect(p.closed()).resolves.toBeUndefined();
    expect(settled).toBe(true);
  });
});
