// Placement on four platforms sharing one real nats-server: the scheduler (elected among them) places apps
// by their constraints; nodes contend for (active-passive) or run (pool) an app only where it is placed;
// relabelling a node moves an app with its replicated database; drains move everything off a node, a
// disruption budget holds one back and says so until the deadline forces it; a scheduler that goes away is
// replaced and its successor's decisions carry a higher epoch.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { fastElection, type NatsServer, startServer, waitFor } from '@gc/testkit';
import { fencedKv } from '@gc/core';
import { openPlacementBucket } from '@gc/platform';
import { PlacementCluster } from './fixtures/placement-cluster.js';

let server: NatsServer;
let c: PlacementCluster;
beforeAll(async () => {
  server = await startServer();
  c = new PlacementCluster(server);
});
afterAll(async () => {
  await server.close();
});
afterEach(async () => {
  await c.close();
});

const election = fastElection();
const cluster = (...a: Parameters<PlacementCluster['start']>) => c.start(...a);
const active = (app: string) => c.active(app);
const state = () => c.state();

describe('placement', () => {
  it('runs an app only on disk=ssd nodes, and moves it with its data when its node is relabelled', async () => {
    await cluster(
      'plc-ssd',
      { n1: { disk: 'ssd' }, n2: { disk: 'hdd' }, n3: { disk: 'ssd' }, n4: { disk: 'hdd' } },
      (_id, dir) => ({
        orders: {
          election,
          placement: { onLabel: 'disk=ssd' },
          sqlite: { path: join(dir, 'orders.db'), snapshotIntervalMs: 0 },
        },
      }),
    );
    const first = await waitFor(() => (active('orders').length === 1 ? active('orders')[0] : undefined), {
      timeoutMs: 20_000,
      message: 'orders active on one node',
    });
    expect(['n1', 'n3']).toContain(first);
    const s = await state();
    expect(s.placements.orders!.nodes).toEqual(['n1', 'n3']);
    expect(s.reasons.orders!.n2).toMatchObject({ status: 'excluded', constraint: 'onLabel' });
    // The hdd nodes say why they do not run it.
    const n2 = c.nodes.find((n) => n.id === 'n2')!;
    expect(n2.apps.get('orders')!.status().placement).toMatchObject({ placed: false });
    expect(n2.apps.get('orders')!.status().placement!.reason).toMatch(/disk=ssd/);

    // Throughout what follows, never two active leaders (sampled every 10 ms).
    let overlap = '';
    const sampler = setInterval(() => {
      const now = active('orders');
      if (now.length > 1) overlap ||= now.join(',');
    }, 10);
    onTestFinished(() => clearInterval(sampler));

    // Acknowledged writes on the leader.
    const leader = c.nodes.find((n) => n.id === first)!;
    const primary = await waitFor(() => leader.apps.get('orders')!.sqlite()?.primary, {
      timeoutMs: 10_000,
      message: 'primary',
    });
    await primary.write((db) => db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)'));
    const acked: number[] = [];
    for (let i = 1; i <= 200; i++) {
      await primary.write((db) => db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(i, `row ${i}`));
      if (i % 20 === 0) {
        await primary.sync();
        for (let j = i - 19; j <= i; j++) acked.push(j);
      }
    }

    // The leader's disk "changes": the app moves to the other ssd node, with every acknowledged row.
    const other = first === 'n1' ? 'n3' : 'n1';
    const t0 = performance.now();
    await leader.p.setLabels({ disk: 'hdd' });
    await waitFor(() => active('orders').join() === other, {
      timeoutMs: 20_000,
      message: `orders on ${other}`,
    });
    const movedMs = performance.now() - t0;
    const target = c.nodes.find((n) => n.id === other)!;
    const db = target.apps.get('orders')!.sqlite()!.primary!.db;
    const rows = db.prepare('SELECT id FROM t ORDER BY id').all() as Array<{ id: number }>;
    const have = new Set(rows.map((r) => r.id));
    expect(acked.filter((id) => !have.has(id))).toEqual([]);
    expect(movedMs).toBeLessThan(15_000);
    // The hdd nodes never ran it.
    for (const n of c.nodes.filter((x) => x.id === 'n2' || x.id === 'n4'))
      expect(n.wasActive.has('orders')).toBe(false);
    const after = await waitFor(
      async () => {
        const x = await state();
        return x.placements.orders?.nodes.join() === other ? x : undefined;
      },
      { timeoutMs: 10_000, message: 'the decision without the relabelled node' },
    );
    expect(after.reasons.orders![first]).toMatchObject({ status: 'excluded', constraint: 'onLabel' });

    // An operator moves the lead: refused where the app may not run, done with the data where it may.
    const control = c.nodes[0]!.p.placement();
    await expect(control.move('orders', 'n2')).rejects.toThrow(
      /n2 may not run it: onLabel: labels do not match "disk=ssd"/,
    );
    await expect(control.move('orders', 'n9')).rejects.toThrow(/n9/);
    await c.nodes.find((n) => n.id === 'n4')!.p.setLabels({ disk: 'ssd' });
    await waitFor(async () => (await control.where('orders')).placed.includes('n4'), {
      timeoutMs: 10_000,
      message: 'n4 placed',
    });
    await waitFor(
      () =>
        control.move('orders', 'n4').then(
          () => true,
          () => false,
        ),
      { timeoutMs: 10_000, message: 'the move to n4 accepted (its standby ready)' },
    );
    await waitFor(() => active('orders').join() === 'n4', { timeoutMs: 15_000, message: 'orders on n4' });
    const moved = c.node('n4').apps.get('orders')!.sqlite()!.primary!.db;
    const ids = new Set((moved.prepare('SELECT id FROM t').all() as Array<{ id: number }>).map((r) => r.id));
    expect(acked.filter((id) => !ids.has(id))).toEqual([]);
    expect(overlap, 'two nodes active at once').toBe('');
  }, 90_000);

  it('keeps awayFromApp apps apart, drains a node empty, and reports a budget that blocks until the deadline', async () => {
    await cluster('plc-drain', { n1: {}, n2: {}, n3: {}, n4: {} }, () => ({
      web: { mode: 'pool', placement: { maxNodes: 2 } },
      batch: { mode: 'pool', placement: { awayFromApp: ['web'], maxNodes: 1 } },
      pinned: { mode: 'pool', placement: { onNodes: ['n1', 'n2'] }, budget: { minAvailable: 2 } },
    }));
    await waitFor(() => active('web').length === 2 && active('batch').length === 1, {
      timeoutMs: 20_000,
      message: () =>
        `web on two nodes, batch on one: ${JSON.stringify({ web: active('web'), batch: active('batch') })}`,
    });
    expect(active('web').filter((n) => active('batch').includes(n))).toEqual([]);
    await waitFor(() => active('pinned').join() === 'n1,n2', {
      timeoutMs: 10_000,
      message: 'pinned on n1, n2',
    });
    // The scheduler sees what runs through the nodes' declarations (published within 250 ms of a change):
    // a drain decided before n1 declares pinned active would count that instance as already unavailable.
    const bucket = await openPlacementBucket(c.nodes[0]!.p.nc, 'plc-drain');
    await waitFor(
      async () => {
        const d = await bucket.declarations();
        return ['n1', 'n2'].every((n) => d.get(n)?.active?.includes('pinned')) || undefined;
      },
      { timeoutMs: 10_000, message: 'n1 and n2 declare pinned active' },
    );

    // Drain n1 with a 15 s deadline: web/batch leave (replacements first), pinned is held by its budget.
    await c.nodes[1]!.p.placement().drain('n1', { deadlineMs: 15_000, reason: 'kernel upgrade' });
    let seen = '';
    const blocked = await waitFor(
      async () => {
        const s = await state();
        const d = s.draining.n1;
        seen = JSON.stringify(s.draining);
        // Replacements start first (an instance leaves once its replacement runs): then only pinned is left.
        return d && d.blocked.length && d.remaining.join() === 'pinned' ? d : undefined;
      },
      {
        timeoutMs: 14_000,
        message: () => `the drain reported as blocked, with only pinned left (last seen: ${seen})`,
      },
    );
    expect(blocked.blocked.join()).toMatch(/pinned.*minAvailable 2/);
    expect(blocked.remaining).toEqual(['pinned']);
    await waitFor(() => !active('web').includes('n1') && !active('batch').includes('n1'), {
      timeoutMs: 10_000,
      message: 'web and batch off n1',
    });
    expect(active('web')).toHaveLength(2);
    expect(active('pinned')).toContain('n1');
    // The deadline passes: the drain forces it, and n1 ends empty.
    await waitFor(() => ['web', 'batch', 'pinned'].every((a) => !active(a).includes('n1')), {
      timeoutMs: 25_000,
      message: 'n1 empty after the deadline',
    });
    expect((await state()).draining.n1).toMatchObject({ forced: true, remaining: [] });
    // Unknown nodes are refused with the live ones named.
    await expect(c.nodes[0]!.p.placement().cordon('n9')).rejects.toThrow(/n9/);
  }, 90_000);

  it('a scheduler that goes away is replaced; the next decisions carry a higher epoch', async () => {
    await cluster(
      'plc-sched',
      { n1: { zone: 'a' }, n2: { zone: 'b' }, n3: { zone: 'a' }, n4: { zone: 'b' } },
      () => ({
        api: { mode: 'pool', placement: { onLabel: 'zone=a' } },
      }),
    );
    await waitFor(() => active('api').join() === 'n1,n3', { timeoutMs: 20_000, message: 'api on n1, n3' });
    const before = await state();
    const gone = c.nodes.find((n) => n.id === before.scheduler)!;
    await gone.p.close();
    c.nodes = c.nodes.filter((n) => n !== gone);
    // A change only a new scheduler can act on: a zone-b node that is still there moves to zone a.
    const moved = c.nodes.find((n) => n.id === 'n2' || n.id === 'n4')!;
    await moved.p.setLabels({ zone: 'a' });
    const after = await waitFor(
      async () => {
        const s = await c.nodes[0]!.p.placement().state();
        return s && s.placements.api?.nodes.includes(moved.id) ? s : undefined;
      },
      { timeoutMs: 20_000, message: `${moved.id} placed by the next scheduler` },
    );
    expect(after.scheduler).not.toBe(before.scheduler);
    expect(after.epoch).toBeGreaterThan(before.epoch);
    expect(after.generation).toBeGreaterThan(before.generation);
    // The old scheduler's epoch is fenced: a late write of it is refused and the decision stays.
    const bucket = await openPlacementBucket(c.nodes[0]!.p.nc, 'plc-sched');
    const stale = fencedKv(bucket.kv, { epoch: () => before.epoch });
    await expect(stale.put('state', JSON.stringify(before))).rejects.toMatchObject({ code: 'GC_FENCED' });
    expect((await bucket.state())!.generation).toBeGreaterThanOrEqual(after.generation);
    await waitFor(() => active('api').includes(moved.id), {
      timeoutMs: 10_000,
      message: `api active on ${moved.id}`,
    });
  }, 60_000);
});
