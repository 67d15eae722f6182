import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, spawnNode, startServer, waitFor, type ChildNode, type NatsServer } from '@gc/testkit';
import { createPlatform } from '@gc/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forceReleaseMigrate, TAIL_LAST_FORCED } from '../../apps/cli/src/test/lock-scenario.js';

// Runs the built `gc` binary (scripts/setup.sh builds it) against a real nats-server.
const bin = fileURLToPath(new URL('../../apps/cli/bin/run.js', import.meta.url));

function gc(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { timeout: 30_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function config(platform: string, id: string, url: string, dataDir: string, apps: string): string {
  return `platform: ${platform}
node: { id: ${id}, labels: { zone: z-${id} } }
nats: { servers: [${url}] }
http: { port: 0 }
dataDir: ${dataDir}
log: { level: warn }
apps:
${apps}`;
}

const fastAp = `  orders:
    mode: active-passive
    election: { ttlMs: 1500, renewIntervalMs: 300, renewDeadlineMs: 1000, pollIntervalMs: 100 }
`;
const pool = `  workers:
    mode: pool
`;

interface StatusJson {
  platform: string;
  nodes: Array<{ id: string; labels: Record<string, string> }>;
  apps: Array<{ name: string; leader: string | null; epoch: number; roles: Record<string, string> }>;
}

let server: NatsServer;
let dir: string;
beforeAll(async () => {
  server = await startServer();
  dir = await makeTempDir('cli');
});
afterAll(async () => {
  await server.close();
});

async function runNode(
  platform: string,
  id: string,
  apps: string,
): Promise<{ child: ChildNode; file: string }> {
  const file = join(dir, `${platform}-${id}.yaml`);
  writeFileSync(file, config(platform, id, server.url, join(dir, `${platform}-${id}-data`), apps));
  const child = spawnNode(bin, { args: ['run', '-c', file], label: `gc-run-${id}` });
  await waitFor(() => child.output().includes('is running'), {
    timeoutMs: 20_000,
    message: `node ${id} running\n${child.output()}`,
  });
  return { child, file };
}

async function status(platform: string): Promise<StatusJson> {
  const r = await gc([
    'status',
    '--json',
    '--platform',
    platform,
    '--server',
    server.url,
    '--timeout',
    '500',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

describe('gc run + gc status', () => {
  it('shows every node and the leaders; SIGKILL of the leader moves leadership; SIGTERM steps down', async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => runNode('clie2e', id, fastAp + pool)));
    const s1 = await waitFor(
      async () => {
        const s = await status('clie2e');
        return s.nodes.length === 3 && s.apps.find((a) => a.name === 'orders')?.leader ? s : undefined;
      },
      { timeoutMs: 15_000, message: 'three nodes and a leader in gc status' },
    );
    expect(s1.nodes.map((n) => n.id)).toEqual(['a', 'b', 'c']);
    expect(s1.nodes[0]!.labels).toEqual({ zone: 'z-a' });
    const workers = s1.apps.find((a) => a.name === 'workers')!;
    expect(Object.values(workers.roles)).toEqual(['active', 'active', 'active']);
    const orders = s1.apps.find((a) => a.name === 'orders')!;
    const leader = orders.leader!;
    expect(
      Object.entries(orders.roles)
        .filter(([, r]) => r === 'active')
        .map(([n]) => n),
    ).toEqual([leader]);

    // Crash the leader: another node takes over within about the TTL.
    await nodes[['a', 'b', 'c'].indexOf(leader)]!.child.kill('SIGKILL');
    const s2 = await waitFor(
      async () => {
        const s = await status('clie2e');
        const o = s.apps.find((a) => a.name === 'orders');
        return s.nodes.length === 2 && o?.leader && o.leader !== leader && o.roles[o.leader] === 'active'
          ? s
          : undefined;
      },
      { timeoutMs: 10_000, message: 'a new leader after SIGKILL' },
    );
    const second = s2.apps.find((a) => a.name === 'orders')!;
    expect(second.epoch).toBeGreaterThan(orders.epoch);

    // Graceful shutdown of the new leader hands over at once (no TTL wait).
    const exit = await nodes[['a', 'b', 'c'].indexOf(second.leader!)]!.child.stop(10_000);
    expect(exit.code).toBe(0);
    await waitFor(
      async () => {
        const o = (await status('clie2e')).apps.find((a) => a.name === 'orders');
        return o?.leader && o.leader !== second.leader && o.roles[o.leader] === 'active';
      },
      { timeoutMs: 10_000, message: 'third leader after SIGTERM' },
    );
    // No TTL wait: the third leader created the released lease ("elected (create)"); after a crash it is
    // "elected (takeover)", once the lease ran out. (Wall time is no proof here: it is mostly CLI start-ups, seconds each on a busy machine.)
    const third = (await status('clie2e')).apps.find((a) => a.name === 'orders')!;
    const activated = JSON.parse(
      (
        await gc([
          'audit',
          'query',
          '--type',
          'app.activated',
          '--app',
          'orders',
          '--json',
          '--platform',
          'clie2e',
          '--server',
          server.url,
        ])
      ).stdout,
    ) as Array<{ epoch?: number; data: { reason?: string } }>;
    expect(activated.find((r) => r.epoch === third.epoch)?.data.reason).toBe('elected (create)');
    expect(activated.find((r) => r.epoch === second.epoch)?.data.reason).toBe('elected (takeover)');
    for (const n of nodes) await n.child.stop();
  });

  it('SIGHUP adds and removes apps live; a bad file is refused and the node keeps running', async () => {
    const { child, file } = await runNode('cliehup', 'a', pool);
    await waitFor(async () => (await status('cliehup')).apps.map((a) => a.name).join() === 'workers', {
      message: 'workers only',
    });
    writeFileSync(file, config('cliehup', 'a', server.url, join(dir, 'hup-data'), fastAp));
    child.kill('SIGHUP').catch(() => undefined);
    await waitFor(async () => (await status('cliehup')).apps.map((a) => a.name).join() === 'orders', {
      timeoutMs: 10_000,
      message: 'orders only after SIGHUP',
    });
    writeFileSync(file, 'platform: cliehup\nnode: { id: a }\nbogus: 1\n');
    process.kill(child.pid, 'SIGHUP');
    await waitFor(() => child.output().includes('reload refused'), { message: 'bad reload refused' });
    expect(child.output()).toMatch(/Unrecognized key: "bogus"/);
    expect((await status('cliehup')).apps.map((a) => a.name)).toEqual(['orders']);
    await child.stop();
  });
});

describe('operator commands', () => {
  // About 30 CLI processes, each a Node start: allow for a loaded machine.
  it(
    'node, app, kv and health commands: --json shapes, tables and not-found exit codes',
    { timeout: 120_000 },
    async () => {
      const nodes = await Promise.all(['a', 'b'].map((id) => runNode('cliops', id, fastAp + pool)));
      const p = ['--platform', 'cliops', '--server', server.url, '--timeout', '500'];
      await waitFor(async () => (await status('cliops')).apps.find((a) => a.name === 'orders')?.leader, {
        message: 'leader',
      });

      const list = await gc(['node', 'list', '--json', ...p]);
      expect(JSON.parse(list.stdout)).toEqual([
        {
          id: 'a',
          health: 'healthy',
          labels: { zone: 'z-a' },
          apps: ['orders', 'workers'],
          server: server.version,
        },
        {
          id: 'b',
          health: 'healthy',
          labels: { zone: 'z-b' },
          apps: ['orders', 'workers'],
          server: server.version,
        },
      ]);
      const table = await gc(['node', 'list', ...p]);
      expect(table.stdout).toMatch(/^NODE\s+HEALTH\s+LABELS\s+APPS\na\s+healthy\s+zone=z-a\s+orders,workers/);

      const ns = JSON.parse((await gc(['node', 'status', 'a', '--json', ...p])).stdout);
      expect(ns).toMatchObject({
        platform: 'cliops',
        nodeId: 'a',
        apps: [{ name: 'orders' }, { name: 'workers', role: 'active' }],
      });
      const missing = await gc(['node', 'status', 'zz', ...p]);
      expect(missing.code).toBe(4);
      expect(missing.stderr).toMatch(/node zz of platform cliops did not answer \(known: a, b\)/);

      const apps = JSON.parse((await gc(['app', 'list', '--json', ...p])).stdout) as Array<{
        name: string;
        leader: string | null;
      }>;
      expect(apps.map((a) => a.name)).toEqual(['orders', 'workers']);
      const orders = JSON.parse((await gc(['app', 'status', 'orders', '--json', ...p])).stdout);
      expect(orders).toMatchObject({ name: 'orders', mode: 'active-passive' });
      expect((await gc(['app', 'status', 'nope', ...p])).code).toBe(4);

      const step = JSON.parse((await gc(['app', 'stepdown', 'orders', '--json', ...p])).stdout);
      expect(step.from).toBe(orders.leader);
      expect(step.newLeader).not.toBe(orders.leader);
      expect(step.newEpoch).toBeGreaterThan(step.epoch);
      expect((await gc(['app', 'stepdown', 'workers', ...p])).code).toBe(4);

      // A rehearsed hand-over, measured and checked against a budget; the report is JSON with --json.
      const drill = await gc([
        'drill',
        'stepdown',
        '--app',
        'orders',
        '--budget-ms',
        '20000',
        '--json',
        ...p,
      ]);
      expect(drill.code, drill.stderr).toBe(0);
      expect(JSON.parse(drill.stdout)).toMatchObject({
        app: 'orders',
        kind: 'stepdown',
        pass: true,
        budgetMs: 20000,
      });
      const poolDrill = await gc(['drill', 'failover', '--app', 'workers', ...p]);
      expect(poolDrill.code).toBe(1);
      expect(poolDrill.stderr).toMatch(/workers is a pool app: only active-passive apps/);
      expect((await gc(['drill', 'failover', '--app', 'ghost', ...p])).code).toBe(4);
      const badCron = await gc(['drill', 'failover', '--app', 'orders', '--schedule', 'every tuesday', ...p]);
      expect(badCron.code).toBe(1);
      expect(badCron.stderr).toMatch(/--schedule "every tuesday" is not a/);

      expect((await gc(['kv', 'put', 'orders', 'feature', 'on', ...p])).code).toBe(0);
      expect(JSON.parse((await gc(['kv', 'get', 'orders', 'feature', '--json', ...p])).stdout)).toMatchObject(
        {
          key: 'feature',
          value: 'on',
          revision: 1,
        },
      );
      expect(JSON.parse((await gc(['kv', 'ls', 'orders', '--json', ...p])).stdout)).toEqual({
        app: 'orders',
        keys: ['feature'],
      });
      expect((await gc(['kv', 'get', 'orders', 'missing', ...p])).code).toBe(4);
      expect((await gc(['kv', 'get', 'workers', 'feature', ...p])).code).toBe(4); // another app's data is not reachable
      const noApp = await gc(['kv', 'ls', 'ghost', ...p]);
      expect(noApp.code).toBe(4);
      expect(noApp.stderr).toMatch(/app ghost of platform cliops has no KV bucket/);
      const badKey = await gc(['kv', 'put', 'orders', 'bad key', 'x', ...p]);
      expect(badKey.code).toBe(1);

      const health = JSON.parse((await gc(['health', '--json', ...p])).stdout);
      expect(health).toMatchObject({
        healthy: true,
        nodes: [
          { id: 'a', state: 'healthy' },
          { id: 'b', state: 'healthy' },
        ],
      });
      for (const n of nodes) await n.child.stop();
      expect((await gc(['health', ...p])).code).toBe(4);
    },
  );
});

describe('ring commands', () => {
  it(
    'show (members, partitions, a key), pin moves a partition, unpin; not-found and bad input exit codes',
    { timeout: 90_000 },
    async () => {
      const members = await Promise.all(
        ['ra', 'rb'].map(async (id) => {
          const p = await createPlatform({
            name: 'cliring',
            nodeId: id,
            nats: { servers: server.url },
            dataDir: join(dir, `cliring-${id}`),
            http: false,
          });
          const app = p.app('cache', { mode: 'ring', ring: { partitions: 8, ttlMs: 1500, settleMs: 0 } });
          await p.start();
          return { p, app };
        }),
      );
      try {
        const p = ['--platform', 'cliring', '--server', server.url];
        await waitFor(() => members.every((m) => m.app.partitions().length > 0), {
          message: 'both serve partitions',
        });
        const show = await gc(['ring', 'show', 'cache', '--key', 'user:42', '--json', ...p]);
        expect(show.code, show.stderr).toBe(0);
        const snap = JSON.parse(show.stdout) as {
          partitions: number;
          members: Array<{ nodeId: string }>;
          key: { partition: number; owner: string };
        };
        expect(snap.partitions).toBe(8);
        expect(snap.members.map((m) => m.nodeId).sort()).toEqual(['ra', 'rb']);
        expect(snap.key.partition).toBe(members[0]!.app.ring()!.partitionOf('user:42'));
        const table = await gc(['ring', 'show', 'cache', '--partitions', ...p]);
        expect(table.stdout).toMatch(/^ring cliring\/cache: 8 partitions, 2 member\(s\)/);
        expect(table.stdout).toMatch(/PARTITION\s+OWNER\s+STATE\s+EPOCH\s+TARGET\s+PIN/);

        // Pin a partition of ra to rb: it moves there.
        const part = members[0]!.app.partitions()[0]!;
        expect((await gc(['ring', 'pin', 'cache', String(part), 'rb', ...p])).code).toBe(0);
        await waitFor(() => members[1]!.app.partitions().includes(part), {
          timeoutMs: 15_000,
          message: 'pinned partition on rb',
        });
        expect(members[0]!.app.partitions()).not.toContain(part);
        expect((await gc(['ring', 'unpin', 'cache', String(part), ...p])).code).toBe(0);
        expect(members[0]!.app.ring()!.pins()).toEqual({});

        const ghost = await gc(['ring', 'pin', 'cache', '1', 'ghost', ...p]);
        expect(ghost.code).toBe(4);
        expect(ghost.stderr).toMatch(/ghost/);
        expect((await gc(['ring', 'pin', 'cache', '99', 'rb', ...p])).code).toBe(1); // no partition 99
        expect((await gc(['ring', 'pin', 'cache', 'x', 'rb', ...p])).code).not.toBe(0);
        const none = await gc(['ring', 'show', 'orders', ...p]);
        expect(none.code).toBe(4);
        expect(none.stderr).toMatch(/app orders of platform cliring has no ring/);
      } finally {
        await Promise.all(members.map((m) => m.p.close()));
      }
    },
  );
});

describe('lock and audit commands', () => {
  it('lists a held lock, refuses a release without --force/--reason, force-releases it and audits who did it', async () => {
    const holder = await createPlatform({
      name: 'clilock',
      nodeId: 'holder',
      nats: { servers: server.url },
      http: false,
      dataDir: join(dir, 'holder'),
    });
    const lease = await (await holder.app('orders').locks()).acquire('migrate', { ttlMs: 30_000 });
    const p = ['--platform', 'clilock', '--server', server.url];
    const list = JSON.parse((await gc(['lock', 'list', '--app', 'orders', '--json', ...p])).stdout) as Array<{
      name: string;
      owner: string;
      epoch: number;
    }>;
    expect(list).toMatchObject([{ name: 'migrate', owner: 'holder', epoch: lease.epoch }]);
    expect((await gc(['lock', 'list', '--json', ...p])).stdout.trim()).toBe('[]');
    const refused = await gc(['lock', 'release', 'migrate', '--app', 'orders', ...p]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/needs --force and --reason/);
    const forced = await gc([...forceReleaseMigrate('holder wedged'), '--json', ...p]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout).released).toMatchObject({ name: 'migrate', owner: 'holder' });
    await waitFor(() => !lease.held(), { timeoutMs: 35_000, message: 'the holder notices it lost the lock' });
    expect((await gc([...forceReleaseMigrate('again'), ...p])).code).toBe(4);
    const q = JSON.parse(
      (await gc(['audit', 'query', '--type', 'lock.forced', '--json', ...p])).stdout,
    ) as Array<{ type: string; data: { reason: string; owner: string } }>;
    expect(q).toMatchObject([{ type: 'lock.forced', data: { reason: 'holder wedged', owner: 'holder' } }]);
    const tail = await gc([...TAIL_LAST_FORCED, ...p]);
    expect(JSON.parse(tail.stdout.trim())).toMatchObject({ type: 'lock.forced', app: 'orders' });
    expect((await gc(['audit', 'query', '--since', 'yesterday-ish', ...p])).stderr).toMatch(
      /--since "yesterday-ish": use a duration/,
    );
    await holder.close();
  });
});

describe('snapshot commands', () => {
  it('create (by the leader), list, restore (verified) and delete', async () => {
    const sqlite = (id: string) => `  ledger:
    mode: active-passive
    election: { ttlMs: 1500, renewIntervalMs: 300, renewDeadlineMs: 1000, pollIntervalMs: 100 }
    sqlite: { path: ${join(dir, `snap-${id}.db`)}, snapshotIntervalMs: 0 }
`;
    const nodes = [
      await runNode('clisnap', 'a', sqlite('a') + pool),
      await runNode('clisnap', 'b', sqlite('b') + pool),
    ];
    const p = ['--platform', 'clisnap', '--server', server.url];
    const leader = await waitFor(
      async () => (await status('clisnap')).apps.find((a) => a.name === 'ledger')?.leader,
      { message: 'ledger leader' },
    );
    const created = await gc(['snapshot', 'create', 'ledger', '--json', ...p]);
    expect(created.code, created.stderr).toBe(0);
    const info = JSON.parse(created.stdout) as { name: string; txid: number; node: string };
    expect(info.node).toBe(leader);
    expect(info.txid).toBeGreaterThan(0);
    const list = JSON.parse((await gc(['snapshot', 'list', 'ledger', '--json', ...p])).stdout) as Array<{
      name: string;
    }>;
    expect(list.map((s) => s.name)).toEqual([info.name]);
    const target = join(dir, 'restored.db');
    const restored = await gc(['snapshot', 'restore', 'ledger', '--to', target, '--json', ...p]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ name: info.name, path: target });
    expect((await gc(['snapshot', 'delete', 'ledger', 'snap-nope', ...p])).code).toBe(4);
    expect((await gc(['snapshot', 'delete', 'ledger', info.name, ...p])).code).toBe(0);
    expect(JSON.parse((await gc(['snapshot', 'list', 'ledger', '--json', ...p])).stdout)).toEqual([]);
    const noLeader = await gc(['snapshot', 'create', 'workers', '--timeout', '500', ...p]);
    expect(noLeader.code, noLeader.stderr).toBe(4);
    expect((await gc(['snapshot', 'restore', 'ghost', '--to', target, ...p])).code).toBe(4);
    for (const n of nodes) await n.child.stop();
  });
});

describe('gc CLI errors', () => {
  it('no NATS: clear message and exit code 3', async () => {
    const r = await gc(['status', '--server', 'nats://127.0.0.1:1', '--json']);
    expect(r.code).toBe(3);
    // --json puts the error in the JSON document on stdout
    expect((JSON.parse(r.stdout) as { error: { message: string } }).error.message).toMatch(
      /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/,
    );
    const plain = await gc(['status', '--server', 'nats://127.0.0.1:1']);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });

  it('no node of the platform: exit code 4 and a hint', async () => {
    const r = await gc(['status', '--server', server.url, '--platform', 'nobody', '--timeout', '200']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/no node of platform nobody answered/);
  });

  it('bad config: the path of the bad field and exit code 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'platform: ok\nnode: { id: a }\napps: { orders: { election: { ttlMs: 1000, renewDeadlineMs: 2000 } } }\n',
    );
    const r = await gc(['run', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.stderr.replace(/\s*›\s*/g, ' ')).toMatch(/apps\.orders\.election: .*renewDeadlineMs/);
  });
});
