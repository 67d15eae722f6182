// Membership liveness on an observer's own clock (FakeClock against a real server) and an observer cut
// off from NATS (ChaosProxy): it must not report live members as gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, FakeClock } from '@gc/core';
import { ChaosProxy, startServer, waitFor, type NatsServer } from '@gc/testkit';
import { createMembership, type MembershipEvent } from './index.js';

describe('membership faults', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc.close();
    await server.close();
  });

  it('a silent member is reported exactly when the observer’s clock passes the member’s failAfterMs', async () => {
    const clock = new FakeClock();
    const obs = await createMembership(nc, { platform: 'fc', nodeId: 'obs', observeOnly: true, clock });
    const events: MembershipEvent[] = [];
    const w = await obs.watch({ initial: false });
    void (async () => {
      for await (const e of w) events.push(e);
    })();
    const nc2 = await connect({ servers: server.url });
    await createMembership(nc2, {
      platform: 'fc',
      nodeId: 'node-b',
      heartbeatMs: 10_000,
      failAfterMs: 30_000,
    });
    await waitFor(() => events.some((e) => e.type === 'join'));
    await nc2.close(); // silent from now on
    await clock.advance(29_990);
    await new Promise((r) => setTimeout(r, 100));
    expect(events.map((e) => e.type)).toEqual(['join']);
    await clock.advance(20);
    const leave = await waitFor(() => events.find((e) => e.type === 'leave'));
    expect(leave).toMatchObject({ reason: 'expired', member: { nodeId: 'node-b', failAfterMs: 30_000 } });
    w.stop();
    await obs.close();
  });

  it('an observer cut off from NATS does not report live members as gone', async () => {
    const proxy = await ChaosProxy.start({ target: { port: server.port } });
    const ncObs = await connect({ servers: proxy.url() });
    const obs = await createMembership(ncObs, {
      platform: 'cut',
      nodeId: 'obs',
      observeOnly: true,
      heartbeatMs: 200,
      opTimeoutMs: 300,
    });
    const a = await createMembership(nc, { platform: 'cut', nodeId: 'node-a', heartbeatMs: 200 });
    await waitFor(async () => (await obs.members()).length === 1);
    const events: MembershipEvent[] = [];
    const w = await obs.watch({ initial: false });
    void (async () => {
      for await (const e of w) events.push(e);
    })();
    proxy.blackhole(); // the observer hears nothing for 3 × failAfterMs
    await new Promise((r) => setTimeout(r, 1800));
    expect(events).toEqual([]);
    proxy.heal();
    await new Promise((r) => setTimeout(r, 1000));
    expect(events.filter((e) => e.type === 'leave')).toEqual([]);
    expect((await obs.members()).map((m) => m.nodeId)).toEqual(['node-a']);
    w.stop();
    await a.close();
    await obs.close();
    await ncObs.close();
    await proxy.close();
  });
});

describe('membership across a nats-server restart', () => {
  it('members are not reported as gone because the server restarted, and a crash during it is still seen', async () => {
    const server = await startServer();
    const ncs = await Promise.all([0, 1, 2].map(() => connect({ servers: server.url })));
    const obs = await createMembership(ncs[0]!, {
      platform: 'rs',
      nodeId: 'obs',
      observeOnly: true,
      heartbeatMs: 200,
    });
    const a = await createMembership(ncs[1]!, { platform: 'rs', nodeId: 'node-a', heartbeatMs: 200 });
    await createMembership(ncs[2]!, { platform: 'rs', nodeId: 'node-b', heartbeatMs: 200 });
    await waitFor(async () => (await obs.members()).length === 2);
    const events: MembershipEvent[] = [];
    const w = await obs.watch({ initial: false });
    void (async () => {
      for await (const e of w) events.push(e);
    })();
    await server.stop();
    await ncs[2]!.close(); // node-b "crashes" while the server is down
    await new Promise((r) => setTimeout(r, 1000)); // longer than failAfterMs (600)
    await server.start();
    const leave = await waitFor(() => events.find((e) => e.type === 'leave'), { timeoutMs: 10_000 });
    expect(leave).toMatchObject({ reason: 'expired', member: { nodeId: 'node-b' } });
    await new Promise((r) => setTimeout(r, 500));
    expect(events.filter((e) => e.type === 'leave').map((e) => e.member.nodeId)).toEqual(['node-b']);
    expect((await obs.members()).map((m) => m.nodeId)).toEqual(['node-a']);
    w.stop();
    await a.close();
    await obs.close();
    await ncs[0]!.close();
    await ncs[1]!.close();
    await server.close();
  });
});
