import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { Kvm } from '@nats-io/kv';
import { ConfigError, connect, InvalidNameError } from '@gc/core';
import { ServerFixture, serverFlavors, waitFor } from '@gc/testkit';
import { createMembership, type Membership, type MembershipEvent } from './index.js';

const flavors = serverFlavors(
  '[membership] skipping the nats-server 2.10.x runs: no 2.10 binary (run scripts/provision-nats.sh)',
);

let platformSeq = 0;

/** Collects events of a watcher in the background. */
async function collect(m: Membership, initial = true): Promise<{ events: MembershipEvent[]; stop(): void }> {
  const w = await m.watch({ initial });
  const events: MembershipEvent[] = [];
  void (async () => {
    for await (const e of w) events.push(e);
  })();
  return { events, stop: () => w.stop() };
}

describe.each(flavors)('membership on nats-server (%s)', (flavor) => {
  const nats = new ServerFixture({ server: { flavor }, connect: (url) => connect({ servers: url }) });
  const join = async (
    platform: string,
    nodeId: string,
    extra: Record<string, unknown> = {},
    conn = nats.nc,
  ) => {
    const m = await createMembership(conn, { platform, nodeId, heartbeatMs: 200, ...extra });
    nats.track(m);
    return m;
  };

  beforeAll(() => nats.start());
  afterAll(() => nats.close());

  it('nodes join with labels, apps and version, and see each other', async () => {
    const p = `p${++platformSeq}`;
    const a = await join(p, 'node-a', { labels: { zone: 'eu-1' }, apps: ['orders'], version: '1.2.3' });
    const seenByA = await collect(a);
    const b = await join(p, 'node-b', { labels: { zone: 'us-2', disk: 'ssd' }, apps: ['billing', 'orders'] });
    expect(a.bucket).toBe(`${p}_membership`);
    expect(a.perKeyTtl).toBe(flavor === 'default');
    await waitFor(async () => (await a.members()).length === 2);
    const [ma, mb] = await b.members();
    expect(ma).toMatchObject({
      nodeId: 'node-a',
      labels: { zone: 'eu-1' },
      apps: ['orders'],
      version: '1.2.3',
      self: false,
    });
    expect(mb).toMatchObject({
      nodeId: 'node-b',
      labels: { zone: 'us-2', disk: 'ssd' },
      apps: ['billing', 'orders'],
      self: true,
    });
    expect(mb!.startedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(mb!.heartbeatMs).toBe(200);
    await waitFor(() => seenByA.events.length >= 2);
    expect(seenByA.events.map((e) => `${e.type}:${e.member.nodeId}`)).toEqual(['join:node-a', 'join:node-b']);
    // Heartbeats alone are not events.
    await new Promise((r) => setTimeout(r, 500));
    expect(seenByA.events).toHaveLength(2);
    expect((await a.member('node-b'))?.sinceHeartbeatMs).toBeLessThan(400);
    seenByA.stop();
  });

  it('a polite close deletes the record at once: others see leave (left)', async () => {
    const p = `p${++platformSeq}`;
    const a = await join(p, 'node-a');
    const b = await createMembership(nats.nc, { platform: p, nodeId: 'node-b', heartbeatMs: 200 });
    await waitFor(async () => (await a.members()).length === 2);
    const seen = await collect(a, false);
    let closed = false;
    void b.closed().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    const t0 = performance.now();
    await b.close();
    expect(closed).toBe(true);
    await b.close();
    await waitFor(() => seen.events.find((e) => e.type === 'leave'));
    expect(performance.now() - t0).toBeLessThan(500); // far below failAfterMs
    expect(seen.events[0]).toMatchObject({ type: 'leave', reason: 'left', member: { nodeId: 'node-b' } });
    expect((await a.members()).map((m) => m.nodeId)).toEqual(['node-a']);
    seen.stop();
    await expect(b.members()).rejects.toMatchObject({ code: 'GC_CLOSED' });
  });

  it('a node that stops heartbeating without a goodbye is reported as left (expired) within failAfterMs', async () => {
    const p = `p${++platformSeq}`;
    const registry = new Registry();
    const a = await join(p, 'node-a', { registry });
    const nc2 = await connect({ servers: nats.server.url });
    await createMembership(nc2, { platform: p, nodeId: 'node-b', heartbeatMs: 200 }); // never closed
    await waitFor(async () => (await a.members()).length === 2);
    const seen = await collect(a, false);
    const cutAt = performance.now();
    await nc2.close(); // the "crash": heartbeats stop, the record stays
    const leave = await waitFor(() => seen.events.find((e) => e.type === 'leave'), { timeoutMs: 5000 });
    const tookMs = performance.now() - cutAt;
    expect(leave).toMatchObject({ reason: 'expired', member: { nodeId: 'node-b' } });
    expect(tookMs).toBeGreaterThanOrEqual(600 - 200 - 50); // failAfter (3 × 200) since the last heartbeat
    expect(tookMs).toBeLessThan(600 + 500);
    expect((await a.members()).map((m) => m.nodeId)).toEqual(['node-a']);
    // The observer removed the stale record, so a newcomer does not see the dead node.
    const kv = await new Kvm(nats.nc).open(`${p}_membership`);
    await waitFor(async () => (await kv.get('node-b'))?.operation !== 'PUT');
    const c = await join(p, 'node-c', { observeOnly: true });
    expect((await c.members()).map((m) => m.nodeId)).toEqual(['node-a']);
    expect(await registry.getSingleMetricAsString('gc_membership_events_total')).toMatch(/type="leave"\} 1/);
    seen.stop();
  });

  it('a crashed record with no observer running: removed by the server TTL on 2.11+, kept on 2.10', async () => {
    const p = `p${++platformSeq}`;
    const nc2 = await connect({ servers: nats.server.url });
    const b = await createMembership(nc2, {
      platform: p,
      nodeId: 'node-b',
      heartbeatMs: 200,
      serverTtlMs: 1000,
    });
    expect(b.perKeyTtl).toBe(flavor === 'default');
    await nc2.close(); // crash; nobody watches
    const kv = await new Kvm(nats.nc).open(`${p}_membership`);
    expect((await kv.get('node-b'))?.operation).toBe('PUT');
    if (flavor === 'default') {
      // serverTtlMs 1000 → per-key TTL "1s".
      await waitFor(async () => (await kv.get('node-b'))?.operation !== 'PUT', { timeoutMs: 4000 });
    } else {
      // No per-key TTL on 2.10: the record stays until an observer expires it (revision-and-timer).
      await new Promise((r) => setTimeout(r, 1500));
      expect((await kv.get('node-b'))?.operation).toBe('PUT');
      const obs = await join(p, 'cli', { observeOnly: true });
      expect((await obs.members()).map((m) => m.nodeId)).toEqual(['node-b']); // first seen now
      await waitFor(async () => (await kv.get('node-b'))?.operation !== 'PUT', { timeoutMs: 3000 });
      expect(await obs.members()).toEqual([]);
    }
  });

  it('updateLabels and updateApps are written at once and seen as update events', async () => {
    const p = `p${++platformSeq}`;
    // Slow heartbeats: this test is about updates, and must not see a flap on a loaded machine.
    const a = await join(p, 'node-a', { labels: { zone: 'eu-1' }, heartbeatMs: 1000 });
    const b = await join(p, 'node-b', { heartbeatMs: 1000 });
    await waitFor(async () => (await b.members()).length === 2);
    const seen = await collect(b, false);
    await a.updateLabels({ zone: 'eu-2', drain: 'true' });
    await a.updateApps(['orders', 'billing']);
    await waitFor(() => seen.events.length >= 2).catch((err: unknown) => {
      throw new Error(`events seen: ${JSON.stringify(seen.events)}`, { cause: err });
    });
    expect(seen.events[0]).toMatchObject({
      type: 'update',
      member: { nodeId: 'node-a', labels: { zone: 'eu-2', drain: 'true' } },
      previous: { labels: { zone: 'eu-1' } },
    });
    expect(seen.events[1]).toMatchObject({ type: 'update', member: { apps: ['billing', 'orders'] } });
    seen.stop();
  });

  it('watch() resolves once live: the current members first, then a change made right after it resolves', async () => {
    const p = `p${++platformSeq}`;
    const a = await join(p, 'node-a', { heartbeatMs: 1000 });
    const b = await join(p, 'node-b', { heartbeatMs: 1000 });
    await waitFor(async () => (await b.members()).length === 2);
    const pending = b.watch();
    expect(pending).toBeInstanceOf(Promise);
    const w = await pending;
    await a.updateLabels({ zone: 'eu-2' }); // the change, right after the watcher is live
    const it = w[Symbol.asyncIterator]();
    const next = async () => (await it.next()).value as MembershipEvent;
    expect(await next()).toMatchObject({ type: 'join', member: { nodeId: 'node-a' } });
    expect(await next()).toMatchObject({ type: 'join', member: { nodeId: 'node-b', self: true } });
    expect(await next()).toMatchObject({
      type: 'update',
      member: { nodeId: 'node-a', labels: { zone: 'eu-2' } },
    });
    w.stop();
    expect(await it.next()).toMatchObject({ done: true });
    // Closed: resolves (does not throw) to an ended watcher.
    await a.close();
    const ended = await a.watch();
    const after: MembershipEvent[] = [];
    for await (const e of ended) after.push(e);
    expect(after).toEqual([]);
  });

  it('observers do not appear; a restarted node replaces its old record', async () => {
    const p = `p${++platformSeq}`;
    const obs = await join(p, 'cli', { observeOnly: true });
    const nc2 = await connect({ servers: nats.server.url });
    await createMembership(nc2, { platform: p, nodeId: 'node-a', heartbeatMs: 200 });
    await nc2.close(); // crashed …
    const again = await join(p, 'node-a'); // … and restarted at once with the same id
    await waitFor(async () => (await obs.members()).length === 1);
    const [m] = await obs.members();
    expect(m!.nodeId).toBe('node-a');
    await new Promise((r) => setTimeout(r, 800)); // longer than failAfterMs: the new instance stays live
    expect((await again.members()).map((x) => x.nodeId)).toEqual(['node-a']);
    await expect(obs.updateLabels({ a: 'b' })).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses bad node ids, labels, apps and unsafe timings with clear errors', async () => {
    await expect(createMembership(nats.nc, { platform: 'p', nodeId: 'a.b' })).rejects.toBeInstanceOf(
      InvalidNameError,
    );
    await expect(createMembership(nats.nc, { platform: 'Bad_P', nodeId: 'a' })).rejects.toThrow(
      /invalid platform name/,
    );
    await expect(
      createMembership(nats.nc, { platform: 'p', nodeId: 'a', labels: { 'bad key': 'x' } }),
    ).rejects.toThrow(/invalid label name "bad key"/);
    await expect(
      createMembership(nats.nc, { platform: 'p', nodeId: 'a', labels: { zone: 5 as unknown as string } }),
    ).rejects.toThrow(/membership.labels.zone/);
    await expect(createMembership(nats.nc, { platform: 'p', nodeId: 'a', apps: ['Orders'] })).rejects.toThrow(
      /invalid app name/,
    );
    await expect(
      createMembership(nats.nc, { platform: 'p', nodeId: 'a', heartbeatMs: 500, failAfterMs: 600 }),
    ).rejects.toThrow(/failAfterMs ≥ 2 × heartbeatMs/);
    await expect(
      createMembership(nats.nc, { platform: 'p', nodeId: 'a', heartbeatMs: 500, serverTtlMs: 1000 }),
    ).rejects.toThrow(/serverTtlMs ≥ failAfterMs/);
    const a = await join(`p${++platformSeq}`, 'node-a');
    await expect(a.updateLabels({ 'x.y': 'z' })).rejects.toBeInstanceOf(InvalidNameError);
    await expect(a.member('a b')).rejects.toBeInstanceOf(InvalidNameError);
  });
});
