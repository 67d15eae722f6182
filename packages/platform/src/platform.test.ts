import { connect, isGcError } from '@gc/core';
import {
  assertClosesOnce,
  fastElection,
  freePort,
  makeTempDir,
  startServer,
  waitFor,
  type NatsServer,
  HTTP_SERVICE_FIXTURE,
} from '@gc/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminClient } from './admin.js';
import { createPlatform } from './platform.js';
import { Registry } from 'prom-client';
import type { Platform, PlatformOptions, PlatformStatus } from './types.js';

let server: NatsServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

const fast = fastElection();

async function node(name: string, nodeId: string, extra: Partial<PlatformOptions> = {}): Promise<Platform> {
  return createPlatform({
    name,
    nodeId,
    nats: { servers: server.url },
    dataDir: await makeTempDir(`plat-${nodeId}`),
    ...extra,
  });
}

describe('recovery budget', () => {
  it('refuses a budget shorter than the worst-case detection the election timings allow, with the arithmetic', async () => {
    const p = await node('budget', 'a');
    expect(() => p.app('orders', { election: fast, recoveryBudgetMs: 1000 })).toThrow(
      /recoveryBudgetMs.*ttlMs 1500 \+ pollIntervalMs 100 = 1600 ms/,
    );
    expect(p.app('orders', { election: fast, recoveryBudgetMs: 5000 }).name).toBe('orders');
    await p.close();
  });
});

describe('placement options', () => {
  it('refuses a migration policy without placement, a bad cron, and bad migration limits, naming the field', async () => {
    const p = await node('migr', 'a');
    expect(() => p.app('orders', { migrate: { cooldownMs: 1000 } })).toThrow(
      /apps\.orders\.migrate: a migration policy needs placement/,
    );
    expect(() =>
      p.app('orders', { placement: {}, migrate: { windows: [{ cron: 'nightly', durationMs: 1000 }] } }),
    ).toThrow(/apps\.orders\.migrate\.windows\[0\]\.cron: "nightly" is not a usable cron expression/);
    expect(
      p.app('orders', { placement: {}, migrate: { windows: [{ cron: '0 2 * * *', durationMs: 1000 }] } })
        .name,
    ).toBe('orders');
    await p.close();
    await expect(node('migr', 'b', { migrations: { maxConcurrentMigrations: 0 } })).rejects.toThrow(
      /migrations\.maxConcurrentMigrations: must be a whole number ≥ 1, got 0/,
    );
    await expect(node('migr', 'b', { migrations: { cooldownMs: -5 } })).rejects.toThrow(
      /migrations\.cooldownMs/,
    );
  });
});

describe('active-passive app', () => {
  it('runs hooks in order on the leader, hands over on close, and every node sees the leader change', async () => {
    const log: string[] = [];
    const a = await node('ap', 'a');
    const b = await node('ap', 'b');
    for (const p of [a, b]) {
      const app = p.app('orders', { election: fast });
      app.on('onStart', () => void log.push(`${p.nodeId}:start`));
      app.on('onActive', ({ epoch }) => void log.push(`${p.nodeId}:active:${epoch}`));
      app.on('onPassive', ({ reason }) => void log.push(`${p.nodeId}:passive:${reason}`));
      app.on('onStop', () => void log.push(`${p.nodeId}:stop`));
      app.on('onLeaderChange', ({ leader }) => void log.push(`${p.nodeId}:leader:${leader}`));
    }
    await a.start();
    await a.apps()[0]!.waitForActive(5000);
    await b.start();
    await waitFor(() => log.includes(`b:leader:a`), { message: 'b sees a as leader' });
    expect(b.apps()[0]!.isActive()).toBe(false);
    const epochA = a.apps()[0]!.epoch();
    expect(epochA).toBeGreaterThan(0);
    await a.close();
    await b.apps()[0]!.waitForActive(5000);
    expect(b.apps()[0]!.epoch()).toBeGreaterThan(epochA);
    const aLog = log.filter((l) => l.startsWith('a:') && !l.includes(':leader:'));
    expect(aLog).toEqual(['a:start', `a:active:${epochA}`, 'a:passive:shutdown', 'a:stop']);
    expect(log.indexOf('a:passive:shutdown')).toBeLessThan(log.findIndex((l) => l.startsWith('b:active:')));
    await b.close();
  });

  it('a failing onActive is reported, cleaned up with onPassive, and leadership moves on', async () => {
    const a = await node('apfail', 'a');
    const b = await node('apfail', 'b');
    const failures: string[] = [];
    a.onHookFailure((f) => failures.push(`${f.hook}:${f.error.message}`));
    const appA = a.app('orders', { election: fast });
    let aPassive = 0;
    appA.on('onActive', () => {
      throw new Error('cannot open the database');
    });
    appA.on('onPassive', () => void aPassive++);
    await a.start();
    await waitFor(() => failures.length > 0, { message: 'onActive failure reported' });
    expect(failures[0]).toBe('onActive:cannot open the database');
    const appB = b.app('orders', { election: fast });
    await b.start();
    await appB.waitForActive(8000);
    expect(aPassive).toBeGreaterThanOrEqual(1);
    expect(appA.isActive()).toBe(false);
    expect(appA.status().hookFailures).toBeGreaterThanOrEqual(1);
    await a.close();
    await b.close();
  });

  it('a hook that hangs times out and is reported as a timeout', async () => {
    const a = await createPlatform({
      name: 'aptimeout',
      nodeId: 'a',
      nats: { servers: server.url },
      dataDir: await makeTempDir('plat'),
      hookTimeoutMs: 200,
    });
    const timedOut: boolean[] = [];
    a.onHookFailure((f) => timedOut.push(f.timedOut));
    a.app('svc', { mode: 'pool', hooks: { onStart: () => new Promise(() => undefined) } });
    await a.start();
    expect(timedOut).toEqual([true]);
    expect(a.apps()[0]!.isActive()).toBe(true);
    await a.close();
  });

  it('stepDown hands leadership to the standby without overlap', async () => {
    const a = await node('apstep', 'a');
    const b = await node('apstep', 'b');
    const active: string[] = [];
    for (const p of [a, b]) {
      const app = p.app('orders', { election: fast });
      app.on('onActive', () => void active.push(`+${p.nodeId}`));
      app.on('onPassive', () => void active.push(`-${p.nodeId}`));
    }
    await a.start();
    await a.apps()[0]!.waitForActive(5000);
    await b.start();
    await a.apps()[0]!.stepDown();
    await b.apps()[0]!.waitForActive(5000);
    expect(active.slice(0, 3)).toEqual(['+a', '-a', '+b']);
    await a.close();
    await b.close();
  });
});

describe('pool app', () => {
  it('is active on every node at once', async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => node('pool', id)));
    for (const p of nodes) p.app('workers', { mode: 'pool' });
    await Promise.all(nodes.map((p) => p.start()));
    expect(nodes.every((p) => p.apps()[0]!.isActive())).toBe(true);
    expect(nodes[0]!.apps()[0]!.epoch()).toBe(0);
    await Promise.all(nodes.map((p) => p.close()));
    expect(nodes.every((p) => p.apps()[0]!.role() === 'stopped')).toBe(true);
  });
});

describe('per-app KV isolation', () => {
  it('gives each app its own bucket; one app cannot read another through the API', async () => {
    const p = await node('iso', 'a');
    const billing = p.app('billing', { mode: 'pool' });
    const orders = p.app('orders', { mode: 'pool' });
    const kvB = await billing.kv();
    const kvO = await orders.kv();
    expect((kvB as unknown as { bucket: string }).bucket).toBe('iso_billing');
    await kvB.put('secret', 'card');
    expect(await kvO.get('secret')).toBeNull();
    await p.close();
  });
});

describe('status, health and metrics over HTTP', () => {
  it('serves /status with the apps and /metrics with platform gauges', async () => {
    const p = await node('http', 'a');
    p.app('orders', { election: fast });
    await p.start();
    await p.apps()[0]!.waitForActive(5000);
    const status = (await (await fetch(`${p.httpUrl()}/status`)).json()) as PlatformStatus;
    expect(status).toMatchObject({
      platform: 'http',
      nodeId: 'a',
      apps: [{ name: 'orders', role: 'active', leader: 'a' }],
    });
    await waitFor(async () => (await fetch(`${p.httpUrl()}/ready`)).status === 200, { message: 'ready' });
    const metrics = await (await fetch(`${p.httpUrl()}/metrics`)).text();
    expect(metrics).toMatch(/gc_app_active\{app="orders"\} 1/);
    // Where the activation's time went, one histogram series per phase.
    expect(metrics).toMatch(/gc_app_activation_phase_seconds_count\{app="orders",phase="onActive"\} 1/);
    // The process's own resources, read at scrape time.
    const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value(metrics, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(value(metrics, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(value(metrics, 'process_start_time_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
    const cpu1 = value(metrics, 'process_cpu_user_seconds_total');
    // Burn 60 ms of CPU (not of wall time: on a loaded machine 50 ms of wall time may be far less CPU).
    const c0 = process.cpuUsage();
    const burnt = () => {
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1e6;
    };
    while (burnt() < 0.06);
    const again = await (await fetch(`${p.httpUrl()}/metrics`)).text();
    expect(
      value(again, 'process_cpu_user_seconds_total') + value(again, 'process_cpu_system_seconds_total'),
    ).toBeGreaterThan(cpu1 + value(metrics, 'process_cpu_system_seconds_total') + 0.04);
    expect(value(again, 'nodejs_eventloop_utilization')).toBeGreaterThan(0);
    await p.close();
  });

  it('adds process metrics to a registry the caller passes only when asked', async () => {
    const own = new Registry();
    const p = await node('http', 'b', { registry: own });
    expect(own.getSingleMetric('process_resident_memory_bytes')).toBeUndefined();
    await p.close();
    const asked = new Registry();
    const q = await node('http', 'c', { registry: asked, processMetrics: true });
    expect(asked.getSingleMetric('process_resident_memory_bytes')).toBeDefined();
    await q.close();
  });
});

describe('bad input', () => {
  it('refuses bad names, duplicate apps and unknown modes with clear errors', async () => {
    await expect(
      createPlatform({ name: 'Bad_Name', nodeId: 'a', nats: { servers: server.url } }),
    ).rejects.toThrow(/invalid platform name/);
    await expect(
      createPlatform({ name: 'ok', nodeId: 'a.b', nats: { servers: server.url } }),
    ).rejects.toThrow(/invalid node id/);
    const p = await node('bad', 'a');
    expect(() => p.app('orders_v2')).toThrow(/invalid app name/);
    expect(() => p.app('audit')).toThrow(/reserved/);
    p.app('orders');
    expect(() => p.app('orders')).toThrow(/already declared/);
    expect(() => p.app('x', { mode: 'shard' as never })).toThrow(/apps\.x\.mode: unknown mode "shard"/);
    expect(() => p.app('y', { ring: { partitions: 8 } })).toThrow(
      /apps\.y\.ring: ring options need mode ring/,
    );
    expect(() => p.app('z', { mode: 'ring', ring: { partitions: 0 } })).toThrow(/apps\.z\.ring\.partitions/);
    expect(() => p.app('w', { mode: 'ring', sqlite: { path: '/tmp/x.db' } })).toThrow(
      /sqlite need mode active-passive/,
    );
    await p.close();
  });

  it('uses a connection the caller owns and leaves it open; closed() resolves after close()', async () => {
    const nc = await connect({ servers: server.url });
    const p = await createPlatform({
      name: 'owned',
      nodeId: 'a',
      nats: nc,
      dataDir: await makeTempDir('plat'),
      http: false,
    });
    await p.start();
    await assertClosesOnce(p);
    expect(nc.isClosed()).toBe(false);
    await nc.close();
    const err = await createPlatform({
      name: 'nojs',
      nodeId: 'a',
      nats: { servers: 'nats://127.0.0.1:1', timeoutMs: 300 },
    }).catch((e: unknown) => e);
    expect(isGcError(err, 'GC_CONNECT_FAILED')).toBe(true);
  });
});

describe('admin client (what the CLI uses)', () => {
  it('collects every node status and steps down the leader remotely', async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => node('adm', id)));
    for (const p of nodes) p.app('orders', { election: fast });
    await Promise.all(nodes.map((p) => p.start()));
    const nc = await connect({ servers: server.url });
    const admin = createAdminClient(nc, 'adm');
    const leader = await waitFor(
      async () => {
        const st = await admin.nodes(300);
        return st.length === 3 && st.every((s) => s.apps[0]!.leader) ? st[0]!.apps[0]!.leader : undefined;
      },
      { message: 'three nodes agree on a leader' },
    );
    const r = await admin.stepDown('orders');
    expect(r.node).toBe(leader);
    await waitFor(
      async () => {
        const st = await admin.nodes(300);
        const l = st[0]!.apps[0]!.leader;
        return l && l !== leader && st.find((s) => s.nodeId === l)!.apps[0]!.role === 'active';
      },
      { message: 'another node leads after the remote step-down' },
    );
    await expect(admin.stepDown('nosuchapp', 300)).rejects.toThrow(/no node is the leader of app nosuchapp/);
    await Promise.all(nodes.map((p) => p.close()));
    expect(await admin.nodes(200)).toEqual([]);
    await assertClosesOnce(admin);
    await nc.close();
  });
});

describe('RPC through the platform', () => {
  it("reaches the leader with to: 'leader', spreads to: 'any' over the pool, and follows a new leader", async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => node('rpcp', id)));
    for (const p of nodes) {
      const orders = p.app('orders', { election: fast });
      orders.handle('whoami', () => ({ node: p.nodeId, epoch: orders.epoch() }));
      const workers = p.app('workers', { mode: 'pool' });
      workers.handle('work', (n: number) => ({ node: p.nodeId, doubled: n * 2 }));
    }
    await Promise.all(nodes.map((p) => p.start()));
    const caller = nodes[0]!;
    const first = await waitFor(
      () => caller.api('orders').call<{ node: string; epoch: number }>('whoami', undefined, { to: 'leader' }),
      {
        message: 'leader answers',
      },
    );
    expect(
      nodes
        .find((p) => p.nodeId === first.node)!
        .apps()[0]!
        .isActive(),
    ).toBe(true);
    const seen = new Set<string>();
    for (let i = 0; i < 60 && seen.size < 3; i++) {
      const r = await caller.api('workers').call<{ node: string; doubled: number }>('work', i, { to: 'any' });
      expect(r.doubled).toBe(i * 2);
      seen.add(r.node);
    }
    expect(seen.size).toBe(3);
    const leader = nodes.find((p) => p.nodeId === first.node)!;
    await leader.apps()[0]!.stepDown();
    const second = await waitFor(
      async () => {
        const r = await caller
          .api('orders')
          .call<{ node: string; epoch: number }>('whoami', undefined, { to: 'leader' });
        return r.node !== first.node ? r : undefined;
      },
      { message: 'a new leader answers' },
    );
    expect(second.epoch).toBeGreaterThan(first.epoch);
    await expect(caller.api('orders').call('nope', undefined, { to: 'any' })).rejects.toMatchObject({
      code: 'GC_RPC_UNKNOWN_METHOD',
    });
    await expect(
      caller.api('ghost').call('x', undefined, { timeoutMs: 300, retries: 0 }),
    ).rejects.toMatchObject({ code: 'GC_RPC_NO_INSTANCE' });
    expect(() => caller.api('Bad_App')).toThrow(/invalid app name/);
    await Promise.all(nodes.map((p) => p.close()));
  });
});

describe('locks, events, membership and audit through the platform', () => {
  it('app and platform locks carry owner and epoch; another app cannot release them', async () => {
    const a = await node('lk', 'a');
    const b = await node('lk', 'b');
    const ordersA = a.app('orders', { mode: 'pool' });
    const billingA = a.app('billing', { mode: 'pool' });
    const ordersB = b.app('orders', { mode: 'pool' });
    await Promise.all([a.start(), b.start()]);
    const lease = await (await ordersA.locks()).acquire('migrate', { ttlMs: 2000 });
    expect(lease).toMatchObject({ owner: 'a' });
    expect(lease.epoch).toBeGreaterThan(0);
    expect(await (await ordersB.locks()).tryAcquire('migrate')).toBeNull();
    // billing's lock of the same name is a different lock in a different bucket
    const other = await (await billingA.locks()).tryAcquire('migrate');
    expect(other).not.toBeNull();
    await expect((await ordersB.locks()).release('migrate')).rejects.toThrow();
    const pl = await (await a.locks()).acquire('maintenance', { ttlMs: 2000 });
    expect(await (await b.locks()).tryAcquire('maintenance')).toBeNull();
    await pl.release();
    await lease.release();
    const next = await (await ordersB.locks()).acquire('migrate', { ttlMs: 2000, waitMs: 2000 });
    expect(next.epoch).toBeGreaterThan(lease.epoch);
    await Promise.all([a.close(), b.close()]);
  });

  it('sees members join and leave, runs the member hooks, and audits state changes', async () => {
    const a = await node('mem', 'a');
    const changes: string[] = [];
    const app = a.app('orders', { election: fast });
    app.on('onMemberJoin', (c) => void changes.push(`join:${c.nodeId}`));
    app.on('onMemberLeave', (c) => void changes.push(`leave:${c.nodeId}:${c.reason}`));
    await a.start();
    await app.waitForActive(5000);
    const b = await node('mem', 'b');
    b.app('orders', { election: fast });
    await b.start();
    await waitFor(() => changes.includes('join:b'), { message: 'a sees b join' });
    expect((await a.members()).map((m) => m.nodeId)).toEqual(['a', 'b']);
    await b.close();
    await waitFor(() => changes.includes('leave:b:left'), { message: 'a sees b leave politely' });
    await a.audit.flush();
    const records = await a.audit.query({ app: 'orders' });
    expect(records.map((r) => r.type)).toEqual(
      expect.arrayContaining(['app.started', 'app.leader', 'app.activated']),
    );
    expect(records.find((r) => r.type === 'app.activated')).toMatchObject({ node: 'a', epoch: app.epoch() });
    const nodeEvents = await a.audit.query({ type: 'node.*' });
    expect(nodeEvents.map((r) => r.type)).toEqual(expect.arrayContaining(['node.joined', 'node.left']));
    await a.close();
  });

  it('delivers app-internal events only to that app and platform events to every app', async () => {
    const p = await node('ev', 'a');
    const orders = p.app('orders', { mode: 'pool' });
    const billing = p.app('billing', { mode: 'pool' });
    await p.start();
    const got: string[] = [];
    await (
      await billing.events()
    ).subscribe<{ id: number }>('created', (e) => void got.push(`billing:${e.data.id}`));
    await (
      await orders.events()
    ).subscribe<{ id: number }>('created', (e) => void got.push(`orders:${e.data.id}`));
    await (await p.events()).subscribe<{ v: string }>('deploy', (e) => void got.push(`platform:${e.data.v}`));
    await (await orders.events()).publish('created', { id: 1 });
    await (await p.events()).publish('deploy', { v: '2' });
    await waitFor(() => got.length >= 2, { message: 'events delivered' });
    await new Promise((r) => setTimeout(r, 200));
    expect(got.sort()).toEqual(['orders:1', 'platform:2']);
    await p.close();
  });
});

describe('backend on the active node', () => {
  const service = HTTP_SERVICE_FIXTURE;
  /** The process backend running the backends' HTTP test service on `port`, healthy once it answers. */
  const serviceBackend = (port: number) => ({
    type: 'process',
    options: {
      command: process.execPath,
      args: [service],
      env: { PORT: String(port) },
      health: { type: 'http', url: `http://127.0.0.1:${port}/` },
      graceMs: 2000,
    },
  });

  it('starts the process backend before onActive on the leader only, and moves it with the leadership', async () => {
    const ports = { a: await freePort(), b: await freePort() };
    const order: string[] = [];
    const nodes = await Promise.all(
      (['a', 'b'] as const).map(async (id) => {
        const p = await node('be', id);
        const app = p.app('web', {
          election: fast,
          backend: serviceBackend(ports[id]),
        });
        app.on('onActive', async () => {
          // the backend is healthy before onActive runs
          const r = await fetch(`http://127.0.0.1:${ports[id]}/`);
          order.push(`${id}:onActive:${r.status}`);
        });
        app.on('onPassive', () => void order.push(`${id}:onPassive`));
        return p;
      }),
    );
    await nodes[0]!.start();
    await nodes[0]!.apps()[0]!.waitForActive(10_000);
    await nodes[1]!.start();
    expect(order).toEqual(['a:onActive:200']);
    const st = await nodes[0]!.refreshedStatus();
    expect(st.apps[0]).toMatchObject({
      backend: { kind: 'process', state: 'running' },
      lastActivation: { backend: expect.any(Number) },
    });
    await expect(fetch(`http://127.0.0.1:${ports.b}/`)).rejects.toThrow(); // standby runs no backend
    await nodes[0]!.close();
    await nodes[1]!.apps()[0]!.waitForActive(10_000);
    expect(order).toEqual(['a:onActive:200', 'a:onPassive', 'b:onActive:200']);
    await expect(fetch(`http://127.0.0.1:${ports.a}/`)).rejects.toThrow(); // stopped with the leadership
    await nodes[1]!.close();
  });

  it("backendRuns 'always': the backend runs on the standby too, a hand-over keeps it running and only waits for it", async () => {
    const ports = { a: await freePort(), b: await freePort() };
    const nodes = await Promise.all(
      (['a', 'b'] as const).map(async (id) => {
        const p = await node('bealways', id);
        p.app('web', {
          election: fast,
          backendRuns: 'always',
          backend: serviceBackend(ports[id]),
        });
        return p;
      }),
    );
    await nodes[0]!.start();
    await nodes[0]!.apps()[0]!.waitForActive(10_000);
    await nodes[1]!.start();
    // The standby's backend answers too.
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${ports.b}/`).catch(() => undefined))?.ok === true,
      {
        message: 'standby backend up',
      },
    );
    // The standby's backend has a health check of its own (nothing else watches it there).
    await waitFor(
      () => nodes[1]!.health.report().checks.find((c) => c.name === 'backend-web')?.state === 'healthy',
      { message: 'backend-web healthy on the standby' },
    );
    const pidA = (await nodes[0]!.refreshedStatus()).apps[0]!.backend?.pid;
    expect(pidA).toEqual(expect.any(Number));
    await nodes[0]!.apps()[0]!.stepDown();
    await nodes[1]!.apps()[0]!.waitForActive(10_000);
    const a = (await nodes[0]!.refreshedStatus()).apps[0]!;
    expect(a.role).not.toBe('active');
    expect(a.backend).toMatchObject({ state: 'running', pid: pidA }); // kept running, same process
    expect((await fetch(`http://127.0.0.1:${ports.a}/`)).ok).toBe(true);
    expect(() => nodes[0]!.app('x', { backendRuns: 'always' })).toThrow(/always needs a backend/);
    await Promise.all(nodes.map((p) => p.close()));
    // Closing the app stops it everywhere.
    await expect(fetch(`http://127.0.0.1:${ports.a}/`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${ports.b}/`)).rejects.toThrow();
  });

  it('refuses a backend or VIP on a pool app', async () => {
    const p = await node('bepool', 'a');
    expect(() => p.app('w', { mode: 'pool', backend: { type: 'process', options: {} } })).toThrow(
      /backend, vip and sqlite need mode active-passive/,
    );
    await p.close();
  });
});

describe('replicated SQLite on an active-passive app', () => {
  it('promotes before onActive, keeps every synced write across a hand-over, and reports replication', async () => {
    const nodes = await Promise.all(
      ['a', 'b'].map(async (id) => {
        const p = await node('sql', id);
        const dir = await makeTempDir(`sql-${id}`);
        const app = p.app('ledger', {
          election: fast,
          sqlite: { path: `${dir}/ledger.db`, snapshotIntervalMs: 0 },
        });
        app.on('onActive', async ({ epoch }) => {
          const primary = app.sqlite()!.primary!;
          await primary.write((db) => {
            db.exec('CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, node TEXT, epoch INTEGER)');
            db.prepare('INSERT INTO entries (node, epoch) VALUES (?, ?)').run(id, epoch);
          });
          await primary.sync();
        });
        return p;
      }),
    );
    await nodes[0]!.start();
    const appA = nodes[0]!.apps()[0]!;
    await appA.waitForActive(15_000);
    await appA.sqlite()!.primary!.write((db) => {
      const ins = db.prepare('INSERT INTO entries (node, epoch) VALUES (?, ?)');
      for (let i = 0; i < 100; i++) ins.run('a-bulk', appA.epoch());
    });
    await appA.sqlite()!.primary!.sync();
    await nodes[1]!.start();
    const appB = nodes[1]!.apps()[0]!;
    await waitFor(async () => (await nodes[1]!.refreshedStatus()).apps[0]!.replication?.txid, {
      message: 'b replicates',
    });
    // a snapshot trims the stream below it: the demoted leader must still be adopted, not flagged
    const snap = await appA.snapshot();
    expect(snap.txid).toBeGreaterThan(0);
    await appA.stepDown();
    await appB.waitForActive(15_000);
    const rows = await appB
      .sqlite()!
      .primary!.write((db) =>
        db.prepare('SELECT node, count(*) AS n FROM entries GROUP BY node ORDER BY node').all(),
      );
    expect(rows).toEqual([
      { node: 'a', n: 1 },
      { node: 'a-bulk', n: 100 },
      { node: 'b', n: 1 },
    ]);
    expect(await appB.sqlite()!.primary!.write((db) => db.pragma('integrity_check', { simple: true }))).toBe(
      'ok',
    );
    const st = await nodes[0]!.refreshedStatus();
    expect(st.apps[0]!.replication).toMatchObject({ role: 'replica' });
    const records = await nodes[1]!.audit.query({ app: 'ledger', type: 'wal.*' });
    expect(records.map((r) => r.type)).toEqual(expect.arrayContaining(['wal.promoted', 'wal.demoted']));
    expect(records.map((r) => r.type)).not.toContain('wal.unreplicated_writes');
    await Promise.all(nodes.map((p) => p.close()));
  });
});
