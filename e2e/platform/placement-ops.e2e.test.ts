// Operators' placement operations on platforms sharing one real nats-server: labels changed from another
// node (kept by the scheduler's bucket, applied by the node itself), plans that write nothing, rebalances
// that give a joining node its share, and maintenance windows that hold an automatic migration back.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fastElection, waitFor } from '@gc/testkit';
import { windowStatus } from '@gc/placement';
import { openPlacementBucket } from '@gc/platform';
import { useServer } from '../test/server.js';
import { PlacementCluster } from './fixtures/placement-cluster.js';

const nats = useServer({ connect: false });
let c: PlacementCluster;
afterEach(async () => {
  await c.close();
});
const election = fastElection();

/** Rows of table `t` in the orders database of node `id`, where orders is the primary. */
function ordersRows(id: string): number {
  const db = c.node(id).apps.get('orders')!.sqlite()!.primary!.db;
  return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
}

describe('placement operations', () => {
  it('labels a node from another, plans without writing, moves the app with its data, and resets', async () => {
    c = new PlacementCluster(nats.server);
    await c.start(
      'plc-label',
      { n1: { disk: 'ssd' }, n2: { disk: 'hdd' }, n3: { disk: 'hdd' } },
      (_id, dir) => ({
        orders: {
          election,
          placement: { onLabel: 'disk=ssd' },
          sqlite: { path: join(dir, 'orders.db'), snapshotIntervalMs: 0 },
        },
        pinned: { mode: 'pool', placement: { onNodes: ['n1', 'n2'] }, budget: { minAvailable: 2 } },
      }),
    );
    await waitFor(() => c.active('orders').join() === 'n1', { timeoutMs: 20_000, message: 'orders on n1' });
    const control = c.node('n3').p.placement();

    // n3 labels n2 ssd: n2 shows it in membership (its own labels() too), and becomes a standby.
    const r = await c.node('n3').p.updateNodeLabels('n2', { disk: 'ssd', rack: 'r7' });
    expect(r.changes).toMatchObject({ set: { disk: 'ssd', rack: 'r7' }, remove: [] });
    await waitFor(() => c.node('n2').p.labels().disk === 'ssd', {
      timeoutMs: 10_000,
      message: 'n2 relabelled',
    });
    expect(c.node('n2').p.labels()).toEqual({ disk: 'ssd', rack: 'r7' });
    await waitFor(
      async () => (await c.node('n1').p.members()).find((m) => m.nodeId === 'n2')?.labels.disk === 'ssd',
      { timeoutMs: 10_000, message: 'n1 sees n2 as ssd' },
    );
    await waitFor(async () => (await control.where('orders')).placed.join() === 'n1,n2', {
      timeoutMs: 10_000,
      message: 'orders placed on n1, n2',
    });

    // Writes the leader acknowledged.
    const primary = await waitFor(() => c.node('n1').apps.get('orders')!.sqlite()?.primary, {
      timeoutMs: 10_000,
      message: 'primary on n1',
    });
    await primary.write((db) => db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)'));
    for (let i = 1; i <= 50; i++) await primary.write((db) => db.prepare('INSERT INTO t VALUES (?)').run(i));
    await primary.sync();
    // Settled: the decision has not changed for a second (the nodes' declarations caught up with it).
    let last = -1;
    await waitFor(
      async () => {
        const s = await c.state();
        const same = s.generation === last && s.leaders?.orders === 'n1' && s.nodes.length === 3;
        last = s.generation;
        return same;
      },
      { timeoutMs: 15_000, intervalMs: 1000, message: 'a settled decision' },
    );

    // Plans write nothing: relabelling n1 hdd would hand orders to n2 (its standby caught up) and stop it on n1.
    const before = await c.state();
    const plan = await control.plan({ op: 'label', node: 'n1', changes: { disk: 'hdd' } });
    expect(plan.generation).toBe(before.generation);
    const change = plan.changes.find((x) => x.app === 'orders');
    expect(change).toMatchObject({ from: ['n1'], leader: { from: 'n1', to: 'n2' } });
    expect(change!.reasons.join('\n')).toMatch(/n1: excluded by onLabel/);
    const d = plan.disruption.find((x) => x.app === 'orders');
    expect(d).toMatchObject({ stops: ['n1'], switchover: { from: 'n1', to: 'n2' } });
    // A drain of n1 is held back by pinned's budget: the plan says so, and names the budget.
    const drain = await control.plan({ op: 'drain', node: 'n1' });
    expect(drain.blocked.join('\n')).toMatch(/pinned.*minAvailable 2/);
    await expect(control.plan({ op: 'cordon', node: 'n9' })).rejects.toThrow(/n9/);
    await expect(control.plan({ op: 'move', app: 'orders', to: 'n3' })).rejects.toThrow(/n3 may not run it/);
    expect((await c.state()).generation).toBe(before.generation);
    expect(c.active('orders')).toEqual(['n1']);

    // Done for real: orders moves to n2 with every acknowledged row.
    await control.label('n1', { disk: 'hdd' });
    await waitFor(() => c.active('orders').join() === 'n2', { timeoutMs: 20_000, message: 'orders on n2' });
    expect(ordersRows('n2')).toBe(50);
    // Removing a label (key → null) and resetting: n1 is back to its configured labels.
    await control.label('n1', { disk: null });
    await waitFor(() => c.node('n1').p.labels().disk === undefined, {
      timeoutMs: 10_000,
      message: 'disk removed',
    });
    await control.label('n1', {}, { reset: true });
    await waitFor(() => c.node('n1').p.labels().disk === 'ssd', { timeoutMs: 10_000, message: 'n1 reset' });
    await waitFor(async () => (await control.where('orders')).placed.join() === 'n1,n2', {
      timeoutMs: 10_000,
      message: 'orders placed on n1 again',
    });
    // The lead stays where it is (a standby coming back moves nothing).
    expect(c.active('orders')).toEqual(['n2']);
    // Bad input: unknown nodes, bad label names, nothing to change.
    await expect(control.label('n9', { disk: 'ssd' })).rejects.toThrow(/n9/);
    await expect(control.label('n1', { 'bad key!': 'x' })).rejects.toThrow(/label/);
    await expect(control.label('n1', {})).rejects.toThrow(/no label to change/);

    // Concurrent label changes of one node both hold (compare-and-set, read again on a conflict).
    await Promise.all([
      c.node('n1').p.updateNodeLabels('n3', { a: '1' }),
      c.node('n2').p.updateNodeLabels('n3', { b: '2' }),
      c.node('n3').p.updateNodeLabels('n3', { maintenance: 'true' }),
    ]);
    await waitFor(() => ['a', 'b', 'maintenance'].every((k) => c.node('n3').p.labels()[k] !== undefined), {
      timeoutMs: 10_000,
      message: 'n3 relabelled',
    });
    expect(c.node('n3').p.labels()).toEqual({ disk: 'hdd', a: '1', b: '2', maintenance: 'true' });
    // A node that restarts joins with the operator's labels, not only with its configured ones.
    const n3 = c.node('n3');
    await n3.p.close();
    c.nodes = c.nodes.filter((n) => n !== n3);
    const [again] = await c.start('plc-label', { n3: { disk: 'hdd' } }, () => ({}));
    expect(again!.p.labels()).toEqual({ disk: 'hdd', a: '1', b: '2', maintenance: 'true' });
    // (Its membership record, written as it joined, already carries them.)
    const seen = await waitFor(async () => (await c.node('n1').p.members()).find((m) => m.nodeId === 'n3'), {
      timeoutMs: 10_000,
      message: 'n1 sees n3 back',
    });
    expect(seen.labels).toMatchObject({ maintenance: 'true' });
  }, 90_000);

  it("holds an automatic migration back until the app's maintenance window opens, then moves it with its data", async () => {
    // A window of 3 s every 15 s (cron with seconds).
    const windows = [{ cron: '*/15 * * * * *', durationMs: 3000, timezone: 'UTC' }];
    c = new PlacementCluster(nats.server);
    await c.start('plc-window', { n1: { disk: 'ssd' }, n2: { disk: 'ssd' } }, (_id, dir) => ({
      orders: {
        election,
        placement: { onLabel: 'disk=ssd' },
        migrate: { windows },
        sqlite: { path: join(dir, 'orders.db'), snapshotIntervalMs: 0 },
      },
    }));
    const leader = await waitFor(
      () => (c.active('orders').length === 1 ? c.active('orders')[0] : undefined),
      {
        timeoutMs: 20_000,
        message: 'orders active on one node',
      },
    );
    const other = leader === 'n1' ? 'n2' : 'n1';
    const primary = await waitFor(() => c.node(leader).apps.get('orders')!.sqlite()?.primary, {
      timeoutMs: 10_000,
      message: 'primary',
    });
    await primary.write((db) => db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)'));
    for (let i = 1; i <= 20; i++) await primary.write((db) => db.prepare('INSERT INTO t VALUES (?)').run(i));
    await primary.sync();
    await waitFor(async () => (await c.state()).placements.orders?.nodes.length === 2, {
      timeoutMs: 10_000,
      message: 'a standby placed',
    });
    // Relabel outside a window, with at least 4 s before the next one opens.
    await waitFor(
      () => {
        const w = windowStatus(windows, Date.now());
        return !w.open && w.opensAt! - Date.now() > 4000;
      },
      { timeoutMs: 20_000, message: 'a time outside the window' },
    );
    const opensAt = (windowStatus(windows, Date.now()) as { opensAt: number }).opensAt;
    await c.node(other).p.updateNodeLabels(leader, { disk: 'hdd' });
    const deferred = await waitFor(async () => (await c.state()).deferred?.orders, {
      timeoutMs: 10_000,
      message: 'the migration deferred',
    });
    expect(deferred).toBe(
      `outside its maintenance windows; the next opens at ${new Date(opensAt).toISOString()}`,
    );
    expect(c.active('orders')).toEqual([leader]);
    // The scheduler's metrics say so too.
    const scheduler = c.node((await c.state()).scheduler);
    expect(await scheduler.p.registry.getSingleMetricAsString('gc_migration_deferred_apps')).toMatch(
      /^gc_migration_deferred_apps 1$/m,
    );
    expect((await c.node(other).p.placement().where('orders')).placed).toContain(leader);
    await waitFor(() => c.active('orders').join() === other, {
      timeoutMs: 25_000,
      message: `orders on ${other}`,
    });
    // The scheduler's clock and this one are the same machine's: the move did not start before the window.
    expect(Date.now()).toBeGreaterThanOrEqual(opensAt);
    expect((await c.state()).deferred?.orders).toBeUndefined();
    const sched = c.node((await c.state()).scheduler);
    expect(await sched.p.registry.getSingleMetricAsString('gc_migration_started_total')).toMatch(
      /gc_migration_started_total\{cause="automatic"\} [1-9]/,
    );
    expect(ordersRows(other)).toBe(20);
  }, 90_000);

  it('gives a node that joins its share after a rebalance', async () => {
    c = new PlacementCluster(nats.server);
    const apps = () =>
      Object.fromEntries(
        ['w1', 'w2', 'w3', 'w4'].map((a) => [a, { mode: 'pool' as const, placement: { maxNodes: 1 } }]),
      );
    await c.start('plc-rebal', { n1: {}, n2: {} }, apps);
    const count = (node: string) => ['w1', 'w2', 'w3', 'w4'].filter((a) => c.active(a).includes(node)).length;
    await waitFor(() => count('n1') + count('n2') === 4, { timeoutMs: 20_000, message: 'four apps running' });
    await c.start('plc-rebal', { n3: {} }, apps);
    const control = c.node('n1').p.placement();
    await waitFor(async () => (await c.state()).nodes.length === 3, {
      timeoutMs: 10_000,
      message: 'n3 seen',
    });
    const plan = await control.plan({ op: 'rebalance', app: 'w1' });
    expect(plan.operation).toEqual({ op: 'rebalance', app: 'w1' });
    for (const a of ['w1', 'w2', 'w3', 'w4']) await control.rebalance(a, { reason: 'n3 joined' });
    await waitFor(() => count('n3') >= 1 && count('n1') + count('n2') + count('n3') === 4, {
      timeoutMs: 20_000,
      message: () => `n3 runs a share (n1 ${count('n1')}, n2 ${count('n2')}, n3 ${count('n3')})`,
    });
    // The rebalances are applied and gone.
    await waitFor(async () => (await openRebalances(c)).length === 0, {
      timeoutMs: 10_000,
      message: 'rebalance records gone',
    });
    await expect(control.rebalance('nope')).rejects.toThrow(/no live node declares app "nope"/);
  }, 60_000);
});

async function openRebalances(cl: PlacementCluster): Promise<string[]> {
  const b = await openPlacementBucket(cl.nodes[0]!.p.nc, cl.nodes[0]!.p.name);
  return [...(await b.rebalances()).keys()];
}
