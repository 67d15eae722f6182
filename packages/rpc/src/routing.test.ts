import { ErrorCode } from '@gc/core';
import { describe, expect, it } from 'vitest';
import { rendezvous } from './policy.js';
import { PLATFORM_RPC_APP } from './subjects.js';
import { RpcErrorCode } from './errors.js';
import { rpcFixture } from './test/fixture.js';
import { delay, rejection } from './test/helpers.js';

const rig = rpcFixture();

const platform = 'rt';

describe('routing (real nats-server)', () => {
  it("spreads to: 'any' calls over every healthy instance", async () => {
    const counts = new Map<string, number>();
    for (const nodeId of ['n1', 'n2', 'n3']) {
      const s = await rig.server({ platform, app: 'pool', nodeId });
      s.handle('who', () => {
        counts.set(nodeId, (counts.get(nodeId) ?? 0) + 1);
        return nodeId;
      });
    }
    const client = await rig.client({ platform });
    const calls = 150;
    for (let i = 0; i < calls; i++) await client.api('pool').call('who', i);
    expect([...counts.keys()].sort()).toEqual(['n1', 'n2', 'n3']);
    // Each instance gets a real share (uniform would be 50; NATS picks at random).
    for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(15);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(calls);
  });

  it("balances to: 'any' by least outstanding calls: a slow instance gets fewer calls", async () => {
    const counts = new Map<string, number>();
    for (const [nodeId, ms] of [
      ['slow', 120],
      ['fast', 2],
    ] as const) {
      const s = await rig.server({ platform, app: 'lo', nodeId });
      s.handle('work', async () => {
        counts.set(nodeId, (counts.get(nodeId) ?? 0) + 1);
        await delay(ms);
        return nodeId;
      });
    }
    const client = await rig.client({ platform });
    await client.api('lo').call('work'); // the first call looks the instances up (and goes to the queue group)
    await delay(150);
    counts.clear();
    // 6 callers in parallel, 10 calls each: a random pick would send about half to the slow one.
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = 0; i < 10; i++) await client.api('lo').call('work');
      }),
    );
    const slow = counts.get('slow') ?? 0;
    const fast = counts.get('fast') ?? 0;
    expect(slow + fast).toBe(60);
    expect(fast / 60).toBeGreaterThan(0.75);
    expect(slow).toBeGreaterThan(0); // still used, not starved
  });

  it("a balanced 'any' call never runs on an instance that became unhealthy while the client's list was fresh", async () => {
    let n2Healthy = true;
    const ran = new Map<string, number>();
    const s1 = await rig.server({ platform, app: 'lh', nodeId: 'n1' });
    const s2 = await rig.server({ platform, app: 'lh', nodeId: 'n2', healthy: () => n2Healthy });
    for (const s of [s1, s2])
      s.handle('who', () => {
        ran.set(s.nodeId, (ran.get(s.nodeId) ?? 0) + 1);
        return s.nodeId;
      });
    const client = await rig.client({ platform });
    await client.api('lh').call('who');
    await delay(150);
    // The client's list of healthy instances (cached for 2 s) still names n2 after this.
    n2Healthy = false;
    await s2.refresh();
    ran.clear();
    for (let i = 0; i < 30; i++) expect(await client.api('lh').call<string>('who')).toBe('n1');
    expect(ran.get('n2') ?? 0).toBe(0);
  });

  it("a sole instance gets 'any' calls through the queue group: none runs once it is unhealthy, the caller gets NoInstance", async () => {
    let healthy = true;
    let ran = 0;
    const s = await rig.server({ platform, app: 'solo', nodeId: 'n1', healthy: () => healthy });
    s.handle('who', () => {
      ran++;
      return s.nodeId;
    });
    const client = await rig.client({ platform });
    await client.api('solo').call('who');
    await delay(150); // the client's list of healthy instances now names n1 (cached for 2 s)
    expect(await client.api('solo').call('who')).toBe('n1');
    healthy = false;
    await s.refresh();
    ran = 0;
    const err = await rejection(client.api('solo').call('who'));
    expect(err.code).toBe(RpcErrorCode.NoInstance);
    expect(ran).toBe(0);
  });

  it('takes an unhealthy instance out of the queue group and brings it back', async () => {
    let n2Healthy = true;
    const seen = new Set<string>();
    const s1 = await rig.server({ platform, app: 'health', nodeId: 'n1' });
    const s2 = await rig.server({ platform, app: 'health', nodeId: 'n2', healthy: () => n2Healthy });
    for (const s of [s1, s2]) s.handle('who', () => s.nodeId);
    const client = await rig.client({ platform });
    n2Healthy = false;
    await s2.refresh();
    for (let i = 0; i < 40; i++) seen.add(await client.api('health').call<string>('who'));
    expect([...seen]).toEqual(['n1']);
    // Direct addressing still reaches it.
    expect(await client.api('health').call('who', null, { to: { node: 'n2' } })).toBe('n2');
    n2Healthy = true;
    await s2.refresh();
    // Back in rotation within the client's discovery TTL (2 s: its list of healthy instances is cached).
    const until = performance.now() + 3000;
    while (seen.size < 2 && performance.now() < until) {
      seen.add(await client.api('health').call<string>('who'));
      await delay(20);
    }
    expect([...seen].sort()).toEqual(['n1', 'n2']);
  });

  it('addresses one node with to: { node }', async () => {
    for (const nodeId of ['a', 'b', 'c']) {
      const s = await rig.server({ platform, app: 'direct', nodeId });
      s.handle('who', () => nodeId);
    }
    const api = (await rig.client({ platform })).api('direct');
    for (const n of ['a', 'b', 'c', 'b', 'a'])
      expect(await api.call('who', null, { to: { node: n } })).toBe(n);
    const err = await rejection(api.call('who', null, { to: { node: 'zz' }, retries: 0 }));
    expect(err.code).toBe(RpcErrorCode.NoInstance);
    expect(err.message).toMatch(/node:zz/);
  });

  it('routes keys deterministically: the same key always reaches the same node, from every client', async () => {
    for (const nodeId of ['k1', 'k2', 'k3']) {
      const s = await rig.server({ platform, app: 'keyed', nodeId });
      s.handle('who', () => nodeId);
    }
    const c1 = (await rig.client({ platform })).api('keyed');
    const c2 = (await rig.client({ platform })).api('keyed');
    const owners = new Map<string, string>();
    for (let i = 0; i < 30; i++) {
      const key = `order-${i}`;
      const a = await c1.call<string>('who', null, { to: { key } });
      const b = await c2.call<string>('who', null, { to: { key } });
      const again = await c1.call<string>('who', null, { to: { key } });
      expect(b).toBe(a);
      expect(again).toBe(a);
      expect(a).toBe(rendezvous(['k1', 'k2', 'k3'], key));
      owners.set(key, a);
    }
    // Keys spread over the instances.
    expect(new Set(owners.values()).size).toBe(3);
  });

  it('uses the route hook for key routing when given', async () => {
    for (const nodeId of ['r1', 'r2']) {
      const s = await rig.server({ platform, app: 'ring', nodeId });
      s.handle('who', () => nodeId);
    }
    const asked: string[] = [];
    const api = (
      await rig.client({
        platform,
        route: (app, key) => {
          asked.push(`${app}/${key}`);
          return key.startsWith('x') ? 'r2' : undefined;
        },
      })
    ).api('ring');
    expect(await api.call('who', null, { to: { key: 'x-1' } })).toBe('r2');
    expect(await api.call('who', null, { to: { key: 'y-1' } })).toBe(rendezvous(['r1', 'r2'], 'y-1'));
    expect(asked).toEqual(['ring/x-1', 'ring/y-1']);
  });

  it("follows the leader: to: 'leader' reaches the current leader and calls follow a switch", async () => {
    let leader = 'l1';
    let epoch = 1;
    const servers = [];
    for (const nodeId of ['l1', 'l2', 'l3']) {
      const s = await rig.server({
        platform,
        app: 'single',
        nodeId,
        isLeader: () => leader === nodeId,
        epoch: () => epoch,
        pollIntervalMs: 50,
      });
      s.handle('who', (_p, ctx) => ({ node: nodeId, epoch: ctx.epoch }));
      servers.push(s);
    }
    const client = await rig.client({ platform });
    const api = client.api('single');
    for (let i = 0; i < 5; i++)
      expect(await api.call('who', null, { to: 'leader' })).toEqual({ node: 'l1', epoch: 1 });
    expect(client.leaderEpoch('single')).toBe(1);
    expect(servers.map((s) => s.servingLeader)).toEqual([true, false, false]);

    // Hand-over: the platform switches the leader and tells the servers (or they notice by polling).
    leader = 'l2';
    epoch = 2;
    await Promise.all(servers.map((s) => s.refresh()));
    for (let i = 0; i < 5; i++)
      expect(await api.call('who', null, { to: 'leader' })).toEqual({ node: 'l2', epoch: 2 });
    expect(client.leaderEpoch('single')).toBe(2);

    // No leader for a while (election in progress): calls retry with backoff and reach the next one.
    leader = 'none';
    await Promise.all(servers.map((s) => s.refresh()));
    const pending = api.call('who', null, { to: 'leader', retries: 8 });
    await delay(150);
    leader = 'l3';
    epoch = 3;
    // Not refreshed explicitly: the servers' poll (50 ms) picks the change up.
    expect(await pending).toEqual({ node: 'l3', epoch: 3 });
    expect(client.leaderEpoch('single')).toBe(3);
  });

  it('fences leader calls by epoch: a deposed leader refuses callers who saw a newer epoch, and the client refuses stale replies', async () => {
    // Two instances that both believe they lead (a partition): old at epoch 4, new at epoch 5.
    let oldLeads = true;
    let newLeads = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    // Each re-reads its leader status only on refresh() (the 10 s poll never comes within the test).
    const leader = (nodeId: string, isLeader: () => boolean, epoch: number) =>
      rig.server({ platform, app: 'fenced', nodeId, isLeader, epoch: () => epoch, pollIntervalMs: 10_000 });
    const old = await leader('old', () => oldLeads, 4);
    old.handle('slow', async () => {
      await gate;
      return 'old';
    });
    old.handle('who', () => 'old');
    const neu = await leader('new', () => newLeads, 5);
    neu.handle('who', () => 'new');
    const client = await rig.client({ platform });
    const api = client.api('fenced');
    expect(await api.call('who', null, { to: 'leader' })).toBe('old');

    // A call is in flight on the old leader when the new one takes over.
    const stale = rejection(api.call('slow', null, { to: 'leader', retries: 0, timeoutMs: 3000 }));
    await delay(50);
    oldLeads = false;
    await old.refresh();
    newLeads = true;
    await neu.refresh();
    expect(await api.call('who', null, { to: 'leader' })).toBe('new');
    expect(client.leaderEpoch('fenced')).toBe(5);
    release();
    // Client rule: a reply stamped with an epoch lower than the highest seen is refused.
    const err = await stale;
    expect(err.code).toBe(ErrorCode.Fenced);
    expect(err.message).toMatch(/epoch 4 is older than epoch 5/);

    // Server rule: the old instance still believes it leads (it missed the change); a caller that has
    // seen epoch 5 is refused before the handler runs.
    oldLeads = true;
    newLeads = false;
    await neu.refresh();
    await old.refresh();
    let ran = 0;
    old.handle('count', () => ++ran);
    const refused = await rejection(api.call('count', null, { to: 'leader', retries: 0 }));
    expect(refused.code).toBe(RpcErrorCode.NotLeader);
    expect(refused.message).toMatch(/seen leader epoch 5.*older epoch 4/);
    expect(ran).toBe(0);
  });

  it("instances() looks the healthy instances up now; the platform's own scope `gc` is served, other reserved names are refused", async () => {
    let healthy = true;
    await rig.server({ platform, app: 'inst', nodeId: 'n2' });
    const n1 = await rig.server({ platform, app: 'inst', nodeId: 'n1', healthy: () => healthy });
    const scope = await rig.server({ platform, app: PLATFORM_RPC_APP, nodeId: 'n1' });
    scope.handle('status', () => ({ node: 'n1' }));
    const client = await rig.client({ platform });
    expect(await client.api('inst').instances({ waitMs: 200 })).toEqual(['n1', 'n2']);
    healthy = false;
    await n1.refresh();
    expect(await client.api('inst').instances({ waitMs: 200 })).toEqual(['n2']);
    expect(await client.api('nobody').instances({ waitMs: 50 })).toEqual([]);
    const gc = client.api(PLATFORM_RPC_APP);
    expect(await gc.instances({ waitMs: 200 })).toEqual(['n1']);
    expect(await gc.call('status', undefined, { to: { node: 'n1' } })).toEqual({ node: 'n1' });
    expect(() => client.api('membership')).toThrow(/reserved/);
  });
});
