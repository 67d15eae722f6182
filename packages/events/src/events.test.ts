import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { ConfigError, connect, InvalidNameError } from '@gc/core';
import { ServerFixture, serverFlavors, waitFor } from '@gc/testkit';
import {
  createEvents,
  DurableConflictError,
  EventsErrorCode,
  InvalidPayloadError,
  PayloadTooLargeError,
  type DeadLetter,
  type EventMessage,
} from './index.js';

const flavors = serverFlavors(
  '[events] skipping the nats-server 2.10.x runs: no 2.10 binary (run scripts/provision-nats.sh)',
);

let seq = 0;
const quiet = () => new Promise((r) => setTimeout(r, 150));

describe.each(flavors)('events on nats-server (%s)', (flavor) => {
  const nats = new ServerFixture({ server: { flavor }, connect: (url) => connect({ servers: url }) });
  const events = async (platform: string, app?: string, extra: Record<string, unknown> = {}) => {
    const e = await createEvents(nats.nc, {
      platform,
      ...(app ? { app } : {}),
      nodeId: 'node-a',
      maxBytes: 8 << 20,
      ...extra,
    });
    nats.track(e);
    return e;
  };

  beforeAll(() => nats.start());
  afterAll(() => nats.close());

  it('publishes and receives app-internal and platform-wide JSON events with wildcard topics', async () => {
    const p = `e${++seq}`;
    const orders = await events(p, 'orders');
    const billing = await events(p, 'billing');
    const platformOnly = await events(p);
    expect(orders.streams).toEqual({ platform: `${p}_events`, app: `${p}_orders_events` });
    expect(platformOnly.streams).toEqual({ platform: `${p}_events` });
    const internal: EventMessage[] = [];
    const wide: EventMessage[] = [];
    const all: EventMessage[] = [];
    await orders.subscribe('order.*', (e) => void internal.push(e));
    await billing.subscribe('>', (e) => void wide.push(e), { scope: 'platform' });
    await platformOnly.subscribe('node.>', (e) => void all.push(e));
    await orders.publish('order.created', { id: 42, items: ['a'] });
    await orders.publish('node.drained', { node: 'n1' }, { scope: 'platform' });
    await platformOnly.publish('node.joined.eu', { node: 'n2' });
    await waitFor(() => internal.length === 1 && wide.length === 2 && all.length === 2);
    expect(internal[0]).toMatchObject({
      topic: 'order.created',
      subject: `${p}.orders.events.order.created`,
      scope: 'app',
      data: { id: 42, items: ['a'] },
      source: { app: 'orders', node: 'node-a' },
      deliveries: 1,
    });
    expect(internal[0]!.id).toBeTruthy();
    expect(wide.map((e) => [e.topic, e.subject])).toEqual([
      ['node.drained', `${p}.events.node.drained`],
      ['node.joined.eu', `${p}.events.node.joined.eu`],
    ]);
    expect(wide[1]!.source).toEqual({ node: 'node-a' });
    const jsm = await jetstreamManager(nats.nc);
    const wideInfo = await jsm.streams.info(`${p}_events`);
    expect(wideInfo.config.subjects).toEqual([`${p}.events.>`]);
    expect(wideInfo.state.messages).toBe(2);
    const appInfo = await jsm.streams.info(`${p}_orders_events`);
    expect(appInfo.config.subjects).toEqual([`${p}.orders.events.>`]);
    expect(appInfo.state.messages).toBe(1);
  });

  it('one app cannot receive another app’s internal events through the API', async () => {
    const p = `e${++seq}`;
    const a = await events(p, 'app-a');
    const b = await events(p, 'app-b');
    const seenByA: EventMessage[] = [];
    const seenByB: EventMessage[] = [];
    await a.subscribe('>', (e) => void seenByA.push(e)); // all of A's internal events
    await a.subscribe('>', (e) => void seenByA.push(e), { scope: 'platform' }); // all platform events
    await a.subscribe('secret', (e) => void seenByA.push(e), { durable: 'spy', deliverFrom: 'all' });
    await b.subscribe('secret', (e) => void seenByB.push(e));
    await b.publish('secret', { pin: 1234 });
    await waitFor(() => seenByB.length === 1);
    await quiet();
    expect(seenByA).toEqual([]);
    // Topics are subject tails under the caller's own app: no way to name another app's subject.
    for (const t of ['..app-b.events.secret', 'app-b/secret', '']) {
      await expect(a.subscribe(t, () => undefined)).rejects.toBeInstanceOf(InvalidNameError);
    }
  });

  it('refuses invalid topics and malformed payloads with typed errors', async () => {
    const p = `e${++seq}`;
    const a = await events(p, 'orders');
    for (const t of ['a.*', '>', 'a.>', '', 'a..b', 'a b', 'ä']) {
      const err = await a.publish(t, {}).catch((e: unknown) => e);
      expect(err, t).toBeInstanceOf(InvalidNameError);
      expect((err as InvalidNameError).code).toBe('GC_INVALID_NAME');
    }
    await expect(a.subscribe('a.>.b', () => undefined)).rejects.toThrow(/invalid event topic name/);
    const circular: Record<string, unknown> = {};
    circular.me = circular;
    for (const bad of [undefined, () => 1, 10n, circular, Symbol('x')]) {
      const err = await a.publish('x', bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidPayloadError);
      expect((err as InvalidPayloadError).code).toBe(EventsErrorCode.InvalidPayload);
    }
    const big = await a.publish('x', 'x'.repeat(2 * 1024 * 1024)).catch((e: unknown) => e);
    expect(big).toBeInstanceOf(PayloadTooLargeError);
    expect((big as Error).message).toMatch(/max_payload/);
    const platformOnly = await events(p);
    await expect(platformOnly.publish('x', {}, { scope: 'app' })).rejects.toBeInstanceOf(ConfigError);
    await expect(a.subscribe('x', () => undefined, { durable: 'bad.name' })).rejects.toBeInstanceOf(
      InvalidNameError,
    );
    await expect(createEvents(nats.nc, { platform: p, app: 'Bad_App' })).rejects.toBeInstanceOf(
      InvalidNameError,
    );
    // A received payload that is not JSON: the handler is not called; onError gets an InvalidPayloadError.
    const errors: Error[] = [];
    const c = await events(p, 'orders', { onError: (err: Error) => errors.push(err) });
    const got: unknown[] = [];
    await c.subscribe('raw', (e) => void got.push(e.data));
    nats.nc.publish(`${p}.orders.events.raw`, 'not json {');
    await c.publish('raw', { ok: true });
    await waitFor(() => got.length === 1 && errors.length === 1);
    expect(got).toEqual([{ ok: true }]);
    expect(errors[0]).toBeInstanceOf(InvalidPayloadError);
  });

  it('durable subscriptions get events published while they were down, and ack only after the handler', async () => {
    const p = `e${++seq}`;
    const a = await events(p, 'orders');
    const got: number[] = [];
    const sub = await a.subscribe<{ n: number }>('job', (e) => void got.push(e.data.n), {
      durable: 'worker',
    });
    await a.publish('job', { n: 1 });
    await waitFor(() => got.length === 1);
    await sub.stop();
    await a.publish('job', { n: 2 });
    await a.publish('job', { n: 3 });
    await a.subscribe<{ n: number }>('job', (e) => void got.push(e.data.n), { durable: 'worker' });
    await waitFor(() => got.length === 3);
    expect(got).toEqual([1, 2, 3]);
    // The same durable name for another topic is a conflict.
    await expect(a.subscribe('other', () => undefined, { durable: 'worker' })).rejects.toBeInstanceOf(
      DurableConflictError,
    );
    expect(await a.deleteDurable('worker')).toBe(true);
    expect(await a.deleteDurable('worker')).toBe(false);
  });

  it('redelivers after a handler failure and dead-letters after maxDeliver (and malformed payloads at once)', async () => {
    const p = `e${++seq}`;
    const dead: DeadLetter[] = [];
    const a = await events(p, 'orders', { onDeadLetter: (d: DeadLetter) => dead.push(d) });
    const deadEvents: EventMessage<DeadLetter>[] = [];
    await a.subscribe<DeadLetter>('gc.dead-letter', (e) => void deadEvents.push(e));
    const attempts = new Map<number, number[]>();
    await a.subscribe<{ n: number; failTimes: number }>(
      'flaky',
      (e) => {
        const list = attempts.get(e.data.n) ?? [];
        list.push(e.deliveries);
        attempts.set(e.data.n, list);
        if (e.deliveries <= e.data.failTimes) throw new Error(`boom ${e.deliveries}`);
      },
      { durable: 'flaky', maxDeliver: 3, retryDelayMs: 20 },
    );
    await a.publish('flaky', { n: 1, failTimes: 2 }); // succeeds on the third delivery
    await a.publish('flaky', { n: 2, failTimes: 99 }); // never succeeds
    nats.nc.publish(`${p}.orders.events.flaky`, 'garbage');
    await waitFor(() => dead.length === 2 && deadEvents.length === 2, { timeoutMs: 5000 });
    expect(attempts.get(1)).toEqual([1, 2, 3]);
    expect(attempts.get(2)).toEqual([1, 2, 3]);
    const byReason = Object.fromEntries(dead.map((d) => [d.reason, d]));
    expect(byReason.failed).toMatchObject({
      topic: 'flaky',
      deliveries: 3,
      error: 'boom 3',
      consumer: 'orders__app__flaky',
    });
    expect(JSON.parse(byReason.failed!.payload)).toEqual({ n: 2, failTimes: 99 });
    expect(byReason.malformed).toMatchObject({ deliveries: 1, payload: 'garbage' });
    expect(deadEvents.map((e) => e.data.reason).sort()).toEqual(['failed', 'malformed']);
    await quiet();
    expect(attempts.get(2)).toHaveLength(3); // terminated: no more deliveries
  });

  it('instances with the same durable name share the work: each event is handled once', async () => {
    const p = `e${++seq}`;
    const a1 = await events(p, 'orders');
    const a2 = await events(p, 'orders');
    const seen: Array<[string, number]> = [];
    await a1.subscribe<{ i: number }>('w', (e) => void seen.push(['a1', e.data.i]), { durable: 'pool' });
    await a2.subscribe<{ i: number }>('w', (e) => void seen.push(['a2', e.data.i]), { durable: 'pool' });
    for (let i = 0; i < 40; i++) await a1.publish('w', { i });
    await waitFor(() => seen.length === 40);
    await quiet();
    expect(seen).toHaveLength(40);
    expect(new Set(seen.map(([, i]) => i)).size).toBe(40);
  });

  it('works on core NATS without the stream (no durables), and queue groups split core events', async () => {
    const p = `e${++seq}`;
    const a = await events(p, 'orders', { stream: false });
    expect(a.streams).toBeUndefined();
    await expect(a.subscribe('x', () => undefined, { durable: 'd' })).rejects.toThrow(
      /need the events streams/,
    );
    const q: string[] = [];
    await a.subscribe('q', () => void q.push('1'), { queue: 'grp' });
    await a.subscribe('q', () => void q.push('2'), { queue: 'grp' });
    for (let i = 0; i < 10; i++) await a.publish('q', i);
    await waitFor(() => q.length === 10);
    await quiet();
    expect(q).toHaveLength(10);
    const jsm = await jetstreamManager(nats.nc);
    await expect(jsm.streams.info(`${p}_events`)).rejects.toThrow();
    let closed = false;
    void a.closed().then(() => (closed = true));
    await quiet();
    expect(closed).toBe(false);
    await a.close();
    expect(closed).toBe(true);
    await a.close();
    await expect(a.publish('q', 1)).rejects.toMatchObject({ code: 'GC_CLOSED' });
  });
});
