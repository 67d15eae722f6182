// Failover drills (`runDrill`, `gc drill`) on three real platforms sharing one nats-server: the drilled
// leader behaves as if its process died, a standby takes over with the data, the report measures each phase
// against the app's recovery budget, proves no acknowledged transaction was lost, and lands in the audit.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastElection, makeTempDir, startServer, waitFor, type NatsServer } from '@gc/testkit';
import { createPlatform, runDrill, type App, type Platform } from '@gc/platform';

let server: NatsServer;
const nodes: Array<{ id: string; p: Platform; app: App }> = [];
beforeAll(async () => {
  server = await startServer();
  for (const id of ['a', 'b', 'c']) {
    const dataDir = await makeTempDir(`drill-${id}`);
    const p = await createPlatform({
      name: 'drill',
      nodeId: id,
      nats: { servers: server.url },
      dataDir,
      http: false,
    });
    const app = p.app('orders', {
      election: fastElection(),
      sqlite: { path: join(dataDir, 'orders.db'), snapshotIntervalMs: 0 },
      recoveryBudgetMs: 10_000,
    });
    app.on('onActive', async () => {
      await app
        .sqlite()!
        .primary!.write((db) => db.exec('CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)'));
    });
    await p.start();
    nodes.push({ id, p, app });
  }
}, 60_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.p.close()));
  await server.close();
});

const leader = () =>
  waitFor(() => nodes.find((n) => n.app.isActive()), { timeoutMs: 15_000, message: 'a leader' });
async function placeOrders(n: number): Promise<number> {
  const l = await leader();
  const primary = await waitFor(() => l.app.sqlite()?.primary, { timeoutMs: 10_000, message: 'primary' });
  await primary.write((db) => {
    const ins = db.prepare('INSERT INTO orders DEFAULT VALUES');
    for (let i = 0; i < n; i++) ins.run();
  });
  return (await primary.sync()).txid;
}

describe('failover drill', () => {
  it('a crash-like failover: a standby takes over within budget, with every acknowledged order', async () => {
    for (let i = 0; i < 5; i++) await placeOrders(20);
    const from = await leader();
    const report = await runDrill(from.p.nc, 'drill', 'orders', 'failover', {
      audit: from.p.audit,
      timeoutMs: 20_000,
    });
    expect(report).toMatchObject({
      app: 'orders',
      kind: 'failover',
      from: { node: from.id },
      pass: true,
      budgetMs: 10_000,
    });
    expect(report.to!.node).not.toBe(from.id);
    expect(report.to!.epoch).toBeGreaterThan(report.from.epoch);
    // Detection is by the lease's TTL (no release): at least most of a TTL passes before anyone is elected.
    expect(report.electedMs!).toBeGreaterThan(1000);
    expect(report.totalMs!).toBeGreaterThanOrEqual(report.electedMs!);
    expect(Object.keys(report.phases)).toContain('database');
    expect(report.data).toMatchObject({ lost: 0 });
    expect(report.data!.after!.txid).toBeGreaterThanOrEqual(report.data!.before.txid);
    const to = nodes.find((n) => n.id === report.to!.node)!;
    const count = await to.app
      .sqlite()!
      .primary!.write((db) => db.prepare('SELECT count(*) AS n FROM orders').get());
    expect(count).toEqual({ n: 100 });
    // The drilled node sat the election out and follows the new leader as a standby.
    expect(from.app.isActive()).toBe(false);
    await waitFor(() => from.app.status().replication?.state === 'following', {
      timeoutMs: 15_000,
      message: 'the drilled node follows again',
    });
    const recorded = await waitFor(
      async () =>
        (await from.p.audit.query({ app: 'orders', type: 'drill.*' })).find((r) => r.type === 'drill.result'),
      { timeoutMs: 5000, message: 'drill.result recorded' },
    );
    expect(recorded).toMatchObject({ severity: 'info', data: { pass: true, to: report.to } });
  }, 60_000);

  it('a step-down drill over a 1 ms budget fails, says which phase was slowest, and is recorded as a warning', async () => {
    await placeOrders(3);
    const from = await leader();
    const report = await runDrill(from.p.nc, 'drill', 'orders', 'stepdown', {
      audit: from.p.audit,
      budgetMs: 1,
      timeoutMs: 20_000,
    });
    expect(report.pass).toBe(false);
    expect(report.to!.node).not.toBe(from.id);
    expect(report.reason).toMatch(/over the budget of 1 ms \(slowest phase: \w+\)/);
    expect(report.data?.lost).toBe(0);
    const last = (await from.p.audit.query({ app: 'orders', type: 'drill.*' }))
      .filter((r) => r.type === 'drill.result')
      .at(-1);
    expect(last).toMatchObject({ severity: 'warn', data: { pass: false } });
  }, 60_000);

  it('a server-restart drill: every node reconnects, the app is active with its replicas caught up, nothing lost; the screens say disconnected meanwhile', async () => {
    await placeOrders(10);
    const from = await leader();
    let sawDisconnected = false;
    const report = await runDrill(from.p.nc, 'drill', 'orders', 'server-restart', {
      audit: from.p.audit,
      timeoutMs: 30_000,
      restartServer: async ({ server: name, node }) => {
        expect(node).toBe(from.id);
        expect(name).toEqual(expect.any(String));
        await server.stop('SIGTERM');
        // While the server is down, the node's status and its nats health check say so (no green screen).
        await waitFor(() => from.p.status().server.connected === false, {
          timeoutMs: 5000,
          message: 'disconnected',
        });
        await waitFor(
          () => from.p.health.report().checks.find((c) => c.name === 'nats')?.state === 'unhealthy',
          {
            timeoutMs: 10_000,
            message: 'nats health red',
          },
        );
        sawDisconnected = true;
        await server.start();
      },
    });
    expect(sawDisconnected).toBe(true);
    expect(report.pass, JSON.stringify(report)).toBe(true);
    expect(report).toMatchObject({ kind: 'server-restart', pass: true, data: { lost: 0 }, budgetMs: 10_000 });
    expect(report.phases).toMatchObject({
      restart: expect.any(Number),
      reconnected: expect.any(Number),
      serving: expect.any(Number),
      replicas: expect.any(Number),
    });
    expect(report.data!.after!.txid).toBeGreaterThanOrEqual(report.data!.before.txid);
    expect(from.p.status().server.connected).toBe(true);
    await expect(
      runDrill(from.p.nc, 'drill', 'orders', 'server-restart', { audit: from.p.audit, timeoutMs: 2000 }),
    ).rejects.toThrow(/needs a way to restart the server/);
  }, 90_000);

  it('refuses an app without a leader with a clear error', async () => {
    await expect(
      runDrill(nodes[0]!.p.nc, 'drill', 'nothing-here', 'failover', {
        audit: nodes[0]!.p.audit,
        timeoutMs: 2000,
      }),
    ).rejects.toThrow(/no active leader/);
  });
});
