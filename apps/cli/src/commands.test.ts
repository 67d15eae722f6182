// Every `gc` command run in-process through @oclif/test's runCommand (oclif's own argv parsing, flag
// validation, error handling and --json output), against one real nats-server and two in-process nodes of
// a platform. The commands are loaded from their TypeScript sources, not from dist: see `loadOptions`.
import { Console } from 'node:console';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Plugin, type Command, type Interfaces } from '@oclif/core';
import { runCommand } from '@oclif/test';
import { silentLogger } from '@gc/core';
import { NatsServerProcess, freePort } from '@gc/nats-server';
import { createPlatform, type App, type Platform } from '@gc/platform';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from './config.js';
import { forceReleaseMigrate, TAIL_LAST_FORCED } from './test/lock-scenario.js';
import { formatPlan } from './placement-plan.js';

const cliRoot = fileURLToPath(new URL('..', import.meta.url));
const commandsDir = join(cliRoot, 'src', 'commands');

/** Command ids (`kv:put`, `drill`, …) of every command source file. */
function commandFiles(): Array<{ id: string; file: string }> {
  return (readdirSync(commandsDir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => ({
      id: f
        .replace(/\.ts$/, '')
        .replace(/(^|\/)index$/, '')
        .split('/')
        .join(':'),
      file: join(commandsDir, f),
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * oclif load options for runCommand: the CLI's package.json with its commands imported from `src/commands`
 * through vitest (so the tests run the TypeScript sources, with no build and no stale `dist` or
 * `oclif.manifest.json`), handed to oclif as an "explicit" command list it does not have to import itself.
 */
async function loadOptions(): Promise<Interfaces.LoadOptions> {
  const commands: Record<string, Command.Class> = {};
  for (const { id, file } of commandFiles()) {
    commands[id] = ((await import(pathToFileURL(file).href)) as { default: Command.Class }).default;
  }
  const pjson = JSON.parse(readFileSync(join(cliRoot, 'package.json'), 'utf8')) as Interfaces.PJSON;
  pjson.oclif = { ...pjson.oclif, commands: { strategy: 'explicit', target: './src/commands' } };
  const plugin = new Plugin({ root: cliRoot, isRoot: true, pjson, ignoreManifest: true });
  // The explicit strategy's command table, filled here instead of by importing `target`.
  Object.assign(plugin, { commandCache: commands });
  await plugin.load();
  return { root: cliRoot, plugins: new Map([[plugin.name, plugin]]) };
}

interface Result {
  stdout: string;
  stderr: string;
  error: (Error & { oclif?: { exit?: number } }) | undefined;
  /** What `gc` would exit with: the error's exit code, else `process.exitCode`, else 0. */
  code: number;
}

let opts: Interfaces.LoadOptions;
const ran = new Set<string>();

/** Runs `gc <argv>` in-process; records which command ran (see the coverage test at the end). */
async function gc(...argv: string[]): Promise<Result> {
  process.exitCode = undefined;
  // oclif prints --json results with console.log, which vitest intercepts before runCommand's capture of
  // process.stdout sees it: route the console to the (captured) process streams while the command runs.
  const originalConsole = globalThis.console;
  globalThis.console = new Console({ stdout: process.stdout, stderr: process.stderr });
  try {
    // runCommand joins argv with spaces and splits it again, keeping "quoted" words together.
    const quoted = argv.map((a) => (/\s/.test(a) ? `"${a}"` : a));
    const r = await runCommand<unknown>(quoted, opts);
    const error = r.error;
    const code = error ? (error.oclif?.exit ?? 1) : Number(process.exitCode ?? 0);
    const words = argv.filter((a) => !a.startsWith('-'));
    for (let n = 1; n <= Math.min(2, words.length); n++) ran.add(words.slice(0, n).join(':'));
    return { stdout: r.stdout, stderr: r.stderr, error, code };
  } finally {
    globalThis.console = originalConsole;
    process.exitCode = undefined;
  }
}

const json = <T>(r: Result): T => JSON.parse(r.stdout) as T;

const PLATFORM = 'clitest';
const fast = {
  ttlMs: 1500,
  renewIntervalMs: 300,
  renewDeadlineMs: 1000,
  pollIntervalMs: 100,
  cooldownMs: 200,
};

let dir: string;
let server: NatsServerProcess;
let url: string;
let nodes: Array<{ p: Platform; orders: App; ledger: App; cache: App }>;
/** Connection and platform flags of a command against the test platform. */
let on: string[];

/**
 * Nodes a and b of `platform` on the test server, labelled zone=z-a and zone=z-b, with their data under
 * `<folder>-<id>` and the apps `declare` adds to each; started.
 */
async function startNodes<T extends object>(
  platform: string,
  folder: string,
  declare: (p: Platform, id: string) => T,
  options: { heartbeatMs?: number } = {},
): Promise<Array<T & { p: Platform }>> {
  return Promise.all(
    ['a', 'b'].map(async (id) => {
      const p = await createPlatform({
        name: platform,
        nodeId: id,
        labels: { zone: `z-${id}` },
        nats: { servers: url },
        http: false,
        ...options,
        dataDir: join(dir, `${folder}-${id}`),
        logger: silentLogger,
      });
      const apps = declare(p, id);
      await p.start();
      return { ...apps, p };
    }),
  );
}

beforeAll(async () => {
  // Named like the testkit's resources (@gc/testkit is no dependency of @gc/cli), so that the global
  // teardown reaps the nats-server and the folder should this worker crash.
  dir = mkdtempSync(join(tmpdir(), `gc-testkit-${process.env.GC_TESTKIT_RUN ?? 'adhoc'}-cli-commands-`));
  const [loaded] = await Promise.all([
    loadOptions(),
    (async () => {
      server = new NatsServerProcess({
        dir: join(dir, 'nats'),
        config: { name: 'cli-test', port: await freePort(), httpPort: await freePort() },
      });
      await server.start();
    })(),
  ]);
  opts = loaded;
  url = server.url;
  on = ['--server', url, '--platform', PLATFORM, '--timeout', '300'];
  nodes = await startNodes(PLATFORM, 'node', (p, id) => {
    const orders = p.app('orders', { election: fast, recoveryBudgetMs: 10_000 });
    p.app('workers', { mode: 'pool' });
    const ledger = p.app('ledger', {
      election: fast,
      sqlite: { path: join(dir, `ledger-${id}.db`), snapshotIntervalMs: 0 },
    });
    const cache = p.app('cache', { mode: 'ring', ring: { partitions: 8, ttlMs: 1500, settleMs: 0 } });
    return { orders, ledger, cache };
  });
  await vi.waitFor(
    () => {
      const leaders = (app: 'orders' | 'ledger') => nodes.filter((n) => n[app].isActive()).length;
      if (leaders('orders') !== 1 || leaders('ledger') !== 1) throw new Error('no leaders yet');
      if (!nodes.every((n) => n.cache.partitions().length > 0)) throw new Error('ring not spread yet');
    },
    { timeout: 20_000, interval: 50 },
  );
}, 60_000);

afterAll(async () => {
  await Promise.all((nodes ?? []).map((n) => n.p.close()));
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const leaderOf = (app: 'orders' | 'ledger'): string => nodes.find((n) => n[app].isActive())!.p.nodeId;

describe('gc version', () => {
  it('prints the gc, Node and nats-server versions', async () => {
    const r = await gc('version', '--json');
    expect(r.code, r.stderr).toBe(0);
    const v = json<{ gc: string; node: string; natsServer: string; natsServerBin: string }>(r);
    const pjson = JSON.parse(readFileSync(join(cliRoot, 'package.json'), 'utf8')) as { version: string };
    expect(v).toEqual({
      gc: pjson.version,
      node: process.version,
      natsServer: server.version,
      natsServerBin: expect.stringMatching(/nats-server/),
    });
    expect((await gc('version')).stdout).toMatch(
      new RegExp(`^gc ${pjson.version} \\(node ${process.version}`),
    );
  });

  it('refuses an unknown flag', async () => {
    const r = await gc('version', '--verbose');
    expect(r.error?.message).toMatch(/Nonexistent flag: --verbose/);
    expect(r.error?.oclif?.exit).toBe(2);
  });
});

describe('gc init and gc run --check', () => {
  it('writes a starter config that gc run --check accepts', async () => {
    const file = join(dir, 'gc.yaml');
    const r = await gc('init', '--config', file, '--platform', 'prod', '--node-id', 'node-x');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(`wrote ${file}`);
    const config = parseConfig(parse(readFileSync(file, 'utf8')), {});
    expect(config).toMatchObject({ platform: 'prod', node: { id: 'node-x' } });
    const check = await gc('run', '--config', file, '--check');
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(`${file} is valid: platform prod, node node-x, apps orders, workers`);
  });

  it('init refuses to overwrite a file without --force', async () => {
    const file = join(dir, 'exists.yaml');
    writeFileSync(file, 'keep me\n');
    const r = await gc('init', '--config', file);
    expect(r.error?.message).toBe(`${file} already exists; pass --force to overwrite it`);
    expect(r.error?.oclif?.exit).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('keep me\n');
    expect((await gc('init', '--config', file, '--force')).code).toBe(0);
    expect(readFileSync(file, 'utf8')).not.toBe('keep me\n');
  });

  it('run refuses a bad config with the path of the bad field, and a missing file', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'platform: ok\nnode: { id: a }\napps: { orders: { election: { ttlMs: 1000, renewDeadlineMs: 2000 } } }\n',
    );
    const r = await gc('run', '--config', file, '--check');
    expect(r.error?.oclif?.exit).toBe(1);
    expect(r.error?.message).toMatch(/apps\.orders\.election: .*renewDeadlineMs/);
    const missing = await gc('run', '--config', join(dir, 'nope.yaml'), '--check');
    expect(missing.error?.oclif?.exit).toBe(1);
    expect(missing.error?.message).toMatch(/nope\.yaml/);
  });

  it('run --help describes SIGHUP reloads', async () => {
    const r = await gc('run', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/USAGE\n\s+\$ gc run/);
    expect(r.stdout).toMatch(/SIGHUP: re-reads the file/);
  });
});

describe('gc status', () => {
  it('shows the nodes and the leader of every app', async () => {
    const r = await gc('status', '--json', ...on);
    expect(r.code, r.stderr).toBe(0);
    const s = json<{
      nodes: Array<{ id: string; labels: Record<string, string> }>;
      apps: Array<{ name: string; leader: string | null; roles: Record<string, string> }>;
    }>(r);
    expect(s.nodes.map((n) => [n.id, n.labels])).toEqual([
      ['a', { zone: 'z-a' }],
      ['b', { zone: 'z-b' }],
    ]);
    expect(s.apps.map((a) => a.name)).toEqual(['cache', 'ledger', 'orders', 'workers']);
    const orders = s.apps.find((a) => a.name === 'orders')!;
    expect(orders.leader).toBe(leaderOf('orders'));
    expect(orders.roles[leaderOf('orders')]).toBe('active');
    const table = await gc('status', ...on);
    expect(table.stdout).toMatch(`platform ${PLATFORM}: 2 node(s)`);
    expect(table.stdout).toMatch(new RegExp(`orders\\s+active-passive\\s+leader=${leaderOf('orders')}`));
  });

  it('a platform with no node: an empty result with --json, exit 4 without', async () => {
    const r = await gc('status', '--json', '--server', url, '--platform', 'nobody', '--timeout', '200');
    expect(r.code).toBe(0);
    expect(json(r)).toEqual({ platform: 'nobody', nodes: [], apps: [] });
    const plain = await gc('status', '--server', url, '--platform', 'nobody', '--timeout', '200');
    expect(plain.error?.oclif?.exit).toBe(4);
    expect(plain.stderr).toMatch(/no node of platform nobody answered within 200 ms/);
  });

  it('no NATS: exit 3, in the JSON error with --json', async () => {
    const closed = `nats://127.0.0.1:${await freePort()}`;
    const r = await gc('status', '--json', '--server', closed);
    expect(r.code).toBe(3);
    expect(json<{ error: { message: string } }>(r).error.message).toMatch(
      `cannot connect to NATS at ${closed}`,
    );
    const plain = await gc('status', '--server', closed);
    expect(plain.error?.oclif?.exit).toBe(3);
  });

  it.each([
    ['node', 'cordon', 'node-b'],
    ['node', 'uncordon', 'node-b'],
    ['node', 'drain', 'node-b'],
    ['node', 'label', 'node-b', 'disk=ssd'],
    ['app', 'move', 'orders', '--to', 'node-b'],
    ['app', 'rebalance', 'orders'],
  ])('no NATS: gc %s %s exits 3, not as a refused operation', async (...argv) => {
    const closed = `nats://127.0.0.1:${await freePort()}`;
    const r = await gc(...argv, '--server', closed);
    expect(r.error?.oclif?.exit).toBe(3);
  });

  it('refuses a --timeout below 50 ms', async () => {
    const r = await gc('status', '--timeout', '10', '--server', url);
    expect(r.error?.oclif?.exit).toBe(2);
    expect(r.error?.message).toMatch(/Expected an integer greater than or equal to 50 but received: 10/);
  });
});

describe('gc health', () => {
  it('healthy nodes: exit 0', async () => {
    const r = await gc('health', '--json', ...on);
    expect(r.code, r.stdout).toBe(0);
    expect(json(r)).toMatchObject({
      healthy: true,
      nodes: [
        { id: 'a', failing: [] },
        { id: 'b', failing: [] },
      ],
    });
  });

  it('no node answers: exit 4 with the reason', async () => {
    const r = await gc('health', '--server', url, '--platform', 'nobody', '--timeout', '200');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/no node of platform nobody answered within 200 ms/);
  });

  it('refuses a --timeout that is not a number', async () => {
    const r = await gc('health', '--timeout', 'soon', ...on.slice(0, 4));
    expect(r.error?.oclif?.exit).toBe(2);
    expect(r.error?.message).toMatch(/Expected an integer but received: soon/);
  });
});

describe('gc node', () => {
  it('list: every node with health, labels and apps', async () => {
    const r = await gc('node', 'list', '--json', ...on);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual(
      ['a', 'b'].map((id) => ({
        id,
        health: 'healthy',
        labels: { zone: `z-${id}` },
        apps: ['orders', 'workers', 'ledger', 'cache'],
        server: server.version,
      })),
    );
  });

  it('list: exit 4 for a platform with no node', async () => {
    const r = await gc('node', 'list', '--server', url, '--platform', 'nobody', '--timeout', '200');
    expect(r.error?.oclif?.exit).toBe(4);
  });

  it('status: one node; an unknown node is exit 4 naming the known ones', async () => {
    const r = await gc('node', 'status', 'b', '--json', ...on);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ platform: PLATFORM, nodeId: 'b', labels: { zone: 'z-b' } });
    const missing = await gc('node', 'status', 'zz', ...on);
    expect(missing.error?.oclif?.exit).toBe(4);
    expect(missing.error?.message).toBe(`node zz of platform ${PLATFORM} did not answer (known: a, b)`);
  });
});

describe('gc node cordon|uncordon|drain|label, gc app move|rebalance|placement, gc explain (placement)', () => {
  const PLC = 'clitest-plc';
  let plc: Array<{ p: Platform; routed: App; web: App }> = [];
  const at = () => ['--server', url, '--platform', PLC, '--timeout', '300'];
  beforeAll(async () => {
    plc = await startNodes(
      PLC,
      'plc',
      (p, id) => {
        const routed = p.app('routed', { election: fast, placement: {} });
        const web = p.app('web', { mode: 'pool', placement: { onLabel: 'zone=z-a' } });
        // For gc app placement and gc explain: a migration held back by a maintenance window that opens once a
        // year, and one refused by b's onMigrationStart hook (both leave a node labelled maint=yes).
        p.app('batch', {
          mode: 'pool',
          placement: { onLabel: 'maint!=yes' },
          migrate: { cooldownMs: 0, windows: [{ cron: '0 0 1 1 *', durationMs: 1000, timezone: 'UTC' }] },
        });
        const sticky = p.app('sticky', {
          mode: 'pool',
          placement: { onLabel: 'maint!=yes' },
          migrate: { cooldownMs: 0 },
        });
        if (id === 'b') sticky.on('onMigrationStart', () => ({ refuse: 'busy with a job' }));
        return { routed, web };
      },
      { heartbeatMs: 300 },
    );
    await vi.waitFor(
      () => {
        if (plc.filter((n) => n.routed.isActive()).length !== 1) throw new Error('routed has no leader yet');
        if (!plc[0]!.web.isActive()) throw new Error('web not active on a yet');
      },
      { timeout: 20_000, interval: 50 },
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all(plc.map((n) => n.p.close()));
  });

  it('explain: where an app runs and why each node does or does not', async () => {
    // The node declares what is active a moment after it is (its declaration is written within 250 ms).
    let r = await gc('explain', 'web', '--json', ...at());
    await vi.waitFor(
      async () => {
        r = await gc('explain', 'web', '--json', ...at());
        expect(r.code, r.stderr).toBe(0);
        expect(json(r)).toMatchObject({ app: 'web', placed: ['a'], active: ['a'] });
      },
      { timeout: 5000, interval: 100 },
    );
    expect(json<{ reasons: Record<string, unknown> }>(r).reasons.b).toMatchObject({
      status: 'excluded',
      constraint: 'onLabel',
    });
    const text = await gc('explain', 'web', ...at());
    expect(text.stdout).toMatch(/web: placed on a; active on a/);
    expect(text.stdout).toMatch(/b +excluded +onLabel: labels do not match "zone=z-a"/);
    expect((await gc('explain', 'nosuch', ...at())).error?.oclif?.exit).toBe(4);
  });

  it('cordon and uncordon a node; an unknown node is exit 4', async () => {
    expect((await gc('node', 'cordon', 'b', '--reason', 'disk swap', ...at())).code).toBe(0);
    expect((await plc[0]!.p.placement().holds()).get('b')).toMatchObject({
      cordoned: true,
      reason: 'disk swap',
    });
    const unknown = await gc('node', 'cordon', 'zz', ...at());
    expect(unknown.error?.oclif?.exit).toBe(4);
    expect(unknown.error?.message).toMatch(/zz/);
    expect((await gc('node', 'uncordon', 'b', ...at())).code).toBe(0);
    expect((await plc[0]!.p.placement().holds()).has('b')).toBe(false);
  });

  it('app move: refused for a pool app and a node that may not run it, done to a ready standby', async () => {
    const pool = await gc('app', 'move', 'web', '--to', 'b', ...at());
    expect(pool.error?.oclif?.exit).toBe(1);
    expect(pool.error?.message).toMatch(/pool app/);
    const leader = plc.find((n) => n.routed.isActive())!.p.nodeId;
    const other = leader === 'a' ? 'b' : 'a';
    await vi.waitFor(
      async () => {
        const r = await gc('app', 'move', 'routed', '--to', other, '--json', ...at());
        if (r.code !== 0) throw new Error(r.error?.message ?? r.stderr);
        expect(json(r)).toMatchObject({ app: 'routed', to: other, active: [other], done: true });
      },
      { timeout: 20_000, interval: 500 },
    );
    expect(plc.find((n) => n.p.nodeId === other)!.routed.isActive()).toBe(true);
    expect((await gc('app', 'move', 'routed', '--to', 'zz', ...at())).error?.oclif?.exit).toBe(4);
  });

  it('node drain: a pool app that no other node may run holds the drain until the deadline forces it', async () => {
    const bad = await gc('node', 'drain', 'a', '--deadline', 'soon', ...at());
    expect(bad.error?.oclif?.exit).toBe(1);
    expect(bad.error?.message).toMatch(/--deadline "soon": use a duration/);
    // Progress goes to stderr (not with --json, where only the result is printed).
    const r = await gc('node', 'drain', 'a', '--deadline', '2s', '--grace', '20s', ...at());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/blocked: app "web" cannot leave a/);
    expect(r.stdout).toMatch(/a is drained \(forced after the deadline\); it stays cordoned/);
    expect((await plc[0]!.p.placement().state())!.draining.a).toMatchObject({ remaining: [], forced: true });
    expect(plc[0]!.web.isActive()).toBe(false);
    expect((await gc('node', 'uncordon', 'a', ...at())).code).toBe(0);
    await vi.waitFor(() => expect(plc[0]!.web.isActive()).toBe(true), { timeout: 10_000, interval: 100 });
  }, 40_000);

  const labelsOf = async (node: string) =>
    json<Array<{ id: string; labels: Record<string, string> }>>(
      await gc('node', 'list', '--json', ...at()),
    ).find((n) => n.id === node)?.labels;

  it('node label: key=value sets, key- removes, waits for membership; --reset; bad changes exit 2, unknown node 4', async () => {
    const set = await gc('node', 'label', 'b', 'tier=gold', 'note=a=b', 'empty=', '--json', ...at());
    expect(set.code, set.stderr).toBe(0);
    expect(json(set)).toMatchObject({
      node: 'b',
      changes: { tier: 'gold', note: 'a=b', empty: '' },
      reset: false,
      recorded: { set: { tier: 'gold', note: 'a=b', empty: '' }, remove: [] },
      labels: { zone: 'z-b', tier: 'gold', note: 'a=b', empty: '' },
      seen: true,
    });
    const removed = await gc('node', 'label', 'b', 'tier-', 'note-', 'empty-', ...at());
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe('b: tier- note- empty- (labels now zone=z-b)\n');
    const noWait = await gc('node', 'label', 'b', 'tier=silver', '--no-wait', ...at());
    expect(noWait.code, noWait.stderr).toBe(0);
    expect(noWait.stdout).toBe('b: tier=silver recorded\n');
    await vi.waitFor(async () => expect((await labelsOf('b'))?.tier).toBe('silver'), { timeout: 5000 });
    // --reset alone: back to the configured labels, which the CLI cannot know (it does not wait).
    const reset = await gc('node', 'label', 'b', '--reset', '--json', ...at());
    expect(reset.code, reset.stderr).toBe(0);
    expect(json(reset)).toEqual({ node: 'b', changes: {}, reset: true, seen: false });
    expect((await gc('node', 'label', 'b', '--reset', ...at())).stdout).toMatch(
      /earlier label changes dropped; the node goes back to its configured labels \(unknown to the CLI: see gc node list\)/,
    );
    await vi.waitFor(async () => expect(await labelsOf('b')).toEqual({ zone: 'z-b' }), { timeout: 5000 });
    // Command lines that do not parse: exit 2, before anything is written.
    for (const [argv, message] of [
      [['=x'], /label change "=x" has no key: use key=value to set a label, key- to remove it/],
      [['zone'], /label change "zone": use key=value/],
      [['bad!key=1'], /label change "bad!key=1": invalid label name "bad!key"/],
      [['a=1', 'a-'], /label a is changed twice/],
      [[], /no label to change: give key=value to set or key- to remove \(or --reset\)/],
      [['a=1', '--reset', '--dry-run'], /--dry-run does not plan a --reset/],
    ] as const) {
      const r = await gc('node', 'label', 'b', ...argv, ...at());
      expect(r.error?.oclif?.exit, `${argv.join(' ')}: ${r.error?.message}`).toBe(2);
      expect(r.error?.message).toMatch(message);
    }
    expect(await labelsOf('b')).toEqual({ zone: 'z-b' });
    const unknown = await gc('node', 'label', 'zz', 'a=1', ...at());
    expect(unknown.error?.oclif?.exit).toBe(4);
    expect(unknown.error?.message).toMatch(/zz/);
  }, 30_000);

  it('--dry-run prints the plan and changes nothing: node label|cordon|uncordon|drain, app move|rebalance', async () => {
    const holds = async () => [...(await plc[0]!.p.placement().holds()).keys()];
    // b labelled zone=z-a may run web (onLabel zone=z-a): web would start there.
    const label = await gc('node', 'label', 'b', 'zone=z-a', '--dry-run', '--json', ...at());
    expect(label.code, label.stderr).toBe(0);
    const plan = json<{ operation: unknown; changes: Array<{ app: string; kind: string; to: string[] }> }>(
      label,
    );
    expect(plan.operation).toEqual({ op: 'label', node: 'b', changes: { zone: 'z-a' } });
    expect(plan.changes).toContainEqual(expect.objectContaining({ app: 'web', kind: 'grow', to: ['b'] }));
    const labelText = await gc('node', 'label', 'b', 'zone=z-a', '--dry-run', ...at());
    expect(labelText.stdout).toMatch(
      /^plan: label b zone=z-a \(against decision \d+; nothing was changed\)\nchanges:\n/,
    );
    expect(labelText.stdout).toMatch(/\n {2}web: - → b\n/);
    expect(await labelsOf('b')).toEqual({ zone: 'z-b' });
    // A drain of a: web may run nowhere else, so it would block the drain (a plan: exit 0).
    const drain = await gc('node', 'drain', 'a', '--deadline', '10m', '--dry-run', '--json', ...at());
    expect(drain.code, drain.stderr).toBe(0);
    expect(json(drain)).toMatchObject({
      operation: { op: 'drain', node: 'a', deadlineMs: 600_000 },
      blocked: [expect.stringMatching(/^a: app "web" cannot leave a/)],
    });
    const drainText = await gc('node', 'drain', 'a', '--dry-run', ...at());
    expect(drainText.code).toBe(0);
    expect(drainText.stdout).toMatch(/^plan: drain a /);
    expect(drainText.stdout).toMatch(/\nblocked:\n {2}a: app "web" cannot leave a/);
    expect(drainText.stdout).toMatch(/\ndisruption:\n(.*\n)* {2}batch: stops on a\n/);
    // A cordon moves nothing; nor does lifting a cordon that is not there.
    const cordon = await gc('node', 'cordon', 'b', '--dry-run', ...at());
    expect(cordon.code, cordon.stderr).toBe(0);
    expect(cordon.stdout).toMatch(
      /^plan: cordon b \(against decision \d+; nothing was changed\)\nno change\n$/,
    );
    const uncordon = await gc('node', 'uncordon', 'a', '--dry-run', '--json', ...at());
    expect(uncordon.code, uncordon.stderr).toBe(0);
    expect(json(uncordon)).toMatchObject({ operation: { op: 'uncordon', node: 'a' }, changes: [] });
    expect(await holds()).toEqual([]);
    for (const cmd of [
      ['node', 'cordon'],
      ['node', 'uncordon'],
      ['node', 'drain'],
      ['node', 'label'],
    ]) {
      const r = await gc(...cmd, 'zz', ...(cmd[1] === 'label' ? ['a=1'] : []), '--dry-run', ...at());
      expect(r.error?.oclif?.exit, cmd.join(' ')).toBe(4);
    }
    // A move of routed's lead: the switchover, to a standby that is caught up.
    const leader = plc.find((n) => n.routed.isActive())!.p.nodeId;
    const other = leader === 'a' ? 'b' : 'a';
    await vi.waitFor(
      async () => {
        const r = await gc('app', 'move', 'routed', '--to', other, '--dry-run', '--json', ...at());
        expect(r.code, r.stderr).toBe(0);
        expect(json(r)).toMatchObject({
          operation: { op: 'move', app: 'routed', to: other },
          changes: [{ app: 'routed', kind: 'leader', leader: { from: leader, to: other } }],
          disruption: [
            { app: 'routed', stops: [], switchover: { from: leader, to: other, standbyReady: true } },
          ],
        });
      },
      { timeout: 10_000, interval: 200 },
    );
    const moveText = await gc('app', 'move', 'routed', '--to', other, '--dry-run', ...at());
    expect(moveText.stdout).toMatch(`  routed: leader ${leader} → ${other}\n`);
    expect(moveText.stdout).toMatch(
      `  routed: switchover ${leader} → ${other}: standby on ${other} caught up\n`,
    );
    expect(plc.find((n) => n.routed.isActive())!.p.nodeId).toBe(leader);
    expect((await gc('app', 'move', 'web', '--to', 'b', '--dry-run', ...at())).error?.oclif?.exit).toBe(1);
    expect((await gc('app', 'move', 'routed', '--to', 'zz', '--dry-run', ...at())).error?.oclif?.exit).toBe(
      4,
    );
    const rebalance = await gc('app', 'rebalance', 'web', '--dry-run', '--json', ...at());
    expect(rebalance.code, rebalance.stderr).toBe(0);
    expect(json(rebalance)).toMatchObject({ operation: { op: 'rebalance', app: 'web' }, changes: [] });
    expect((await gc('app', 'rebalance', 'nosuch', '--dry-run', ...at())).error?.oclif?.exit).toBe(4);
    expect(await holds()).toEqual([]);
    expect(plc.find((n) => n.routed.isActive())!.p.nodeId).toBe(leader);
  }, 30_000);

  it('the plan printer: a switchover to a standby that is not caught up, its replica lag, deferred and unsatisfiable', () => {
    const text = formatPlan({
      operation: { op: 'move', app: 'ledger', to: 'b' },
      generation: 7,
      changes: [
        {
          app: 'ledger',
          kind: 'leader',
          from: [],
          to: [],
          leader: { from: 'a', to: 'b' },
          reasons: ['b: moved by an operator'],
        },
      ],
      disruption: [{ app: 'ledger', stops: [], switchover: { from: 'a', to: 'b', standbyReady: false } }],
      deferred: { batch: 'outside its maintenance windows' },
      blocked: [],
      unsatisfiable: { gpu: 'no node has gpu=yes' },
      replicaLag: [{ app: 'ledger', node: 'b', lagTx: 12, lagMs: 3400, state: 'following' }],
    });
    expect(text).toBe(
      [
        'plan: move ledger to b (against decision 7; nothing was changed)',
        'changes:',
        '  ledger: leader a → b',
        '      b: moved by an operator',
        'disruption:',
        '  ledger: switchover a → b: standby on b NOT caught up (replica following, 12 tx / 3400 ms behind): the switchover waits for it (data at risk if a fails meanwhile)',
        'deferred:',
        '  batch: outside its maintenance windows',
        'unsatisfiable:',
        '  gpu: no node has gpu=yes',
      ].join('\n'),
    );
  });

  it('app rebalance: applied by the scheduler and active where placed; --no-wait; unknown app exit 4', async () => {
    const r = await gc('app', 'rebalance', 'routed', '--reason', 'test', '--json', ...at());
    expect(r.code, r.stderr).toBe(0);
    const out = json<{ after: { leader: string; active: string[] }; applied: boolean; converged: boolean }>(
      r,
    );
    expect(out).toMatchObject({ app: 'routed', applied: true, converged: true });
    expect(out.after.active).toEqual([out.after.leader]);
    expect((await plc[0]!.p.placement().state())?.placements.routed?.leader).toBe(out.after.leader);
    const web = await gc('app', 'rebalance', 'web', ...at());
    expect(web.code, web.stderr).toBe(0);
    expect(web.stdout).toMatch(/^web rebalanced: placed on a \(decision \d+; unchanged\)\n$/);
    const noWait = await gc('app', 'rebalance', 'web', '--no-wait', '--json', ...at());
    expect(noWait.code, noWait.stderr).toBe(0);
    expect(json(noWait)).toMatchObject({ app: 'web', applied: false, before: { placed: ['a'] } });
    const unknown = await gc('app', 'rebalance', 'nosuch', ...at());
    expect(unknown.error?.oclif?.exit).toBe(4);
    expect(unknown.error?.message).toBe(`no live node of platform ${PLC} declares app nosuch with placement`);
  }, 40_000);

  it('app placement and explain: the declared spec, its maintenance window, deferred and refused migrations', async () => {
    let r = await gc('app', 'placement', 'batch', '--json', ...at());
    await vi.waitFor(
      async () => {
        r = await gc('app', 'placement', 'batch', '--json', ...at());
        expect(r.code, r.stderr).toBe(0);
        expect(json(r)).toMatchObject({ placed: ['a', 'b'], active: ['a', 'b'] });
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(json(r)).toMatchObject({
      app: 'batch',
      declared: {
        mode: 'pool',
        placement: { onLabel: 'maint!=yes' },
        migrate: { cooldownMs: 0, windows: [{ cron: '0 0 1 1 *', durationMs: 1000, timezone: 'UTC' }] },
        declaredBy: ['a', 'b'],
      },
      window: { open: false, opensAt: expect.stringMatching(/^\d{4}-01-01T00:00:00\.000Z$/) },
    });
    const text = await gc('app', 'placement', 'batch', ...at());
    expect(text.stdout).toMatch(
      /^batch \(pool\), declared by a, b\n {2}constraints: \{"onLabel":"maint!=yes"\}\n {2}budget: +none\n/,
    );
    expect(text.stdout).toMatch(/ {2}migrate: +cooldown 0 ms; windows "0 0 1 1 \*" for 1000 ms \(UTC\)\n/);
    expect(text.stdout).toMatch(/ {2}window: +closed, the next opens at \d{4}-01-01T00:00:00\.000Z\n/);
    expect(text.stdout).toMatch(/\nplaced on a, b; active on a, b \(decision \d+\)\n/);
    const routed = await gc('app', 'placement', 'routed', '--json', ...at());
    expect(json(routed)).toMatchObject({ declared: { mode: 'active-passive', placement: {} } });
    expect(json<object>(routed)).not.toHaveProperty('window');
    const unknown = await gc('app', 'placement', 'nosuch', ...at());
    expect(unknown.error?.oclif?.exit).toBe(4);
    expect(unknown.error?.message).toBe(`no live node of platform ${PLC} declares app nosuch with placement`);
    // b labelled maint=yes: batch may not leave it before its window opens, sticky's hook on b refuses.
    expect((await gc('node', 'label', 'b', 'maint=yes', ...at())).code).toBe(0);
    await vi.waitFor(
      async () => {
        const batch = await gc('explain', 'batch', '--json', ...at());
        expect(json(batch)).toMatchObject({
          deferred: expect.stringMatching(
            /^outside its maintenance windows; the next opens at \d{4}-01-01T00:00:00\.000Z$/,
          ),
        });
        expect(json(await gc('explain', 'sticky', '--json', ...at()))).toMatchObject({
          refused: 'b: busy with a job',
        });
      },
      { timeout: 15_000, interval: 200 },
    );
    expect((await gc('explain', 'batch', ...at())).stdout).toMatch(
      /\nmigration deferred: outside its maintenance windows; the next opens at /,
    );
    expect((await gc('explain', 'sticky', ...at())).stdout).toMatch(
      /\nmigration refused: b: busy with a job\n/,
    );
    const deferred = await gc('app', 'placement', 'batch', ...at());
    expect(deferred.stdout).toMatch(/\n {2}deferred: outside its maintenance windows/);
    expect(json(await gc('app', 'placement', 'sticky', '--json', ...at()))).toMatchObject({
      refused: 'b: busy with a job',
    });
    expect((await gc('node', 'label', 'b', '--reset', ...at())).code).toBe(0);
    await vi.waitFor(
      async () => {
        const sticky = json<{ refused?: string; placed: string[] }>(
          await gc('explain', 'sticky', '--json', ...at()),
        );
        expect(sticky.refused).toBeUndefined();
        expect(sticky.placed).toEqual(['a', 'b']);
      },
      { timeout: 15_000, interval: 200 },
    );
  }, 40_000);
});

describe('gc kv', () => {
  it('put, get and ls on an app bucket', async () => {
    await nodes[0]!.orders.kv(); // the bucket exists once the app used kv()
    const put = await gc('kv', 'put', 'orders', 'feature', 'on', '--json', ...on);
    expect(put.code, put.stderr).toBe(0);
    expect(json(put)).toEqual({ app: 'orders', key: 'feature', revision: 1 });
    const get = await gc('kv', 'get', 'orders', 'feature', '--json', ...on);
    expect(json(get)).toMatchObject({ app: 'orders', key: 'feature', value: 'on', revision: 1 });
    expect((await gc('kv', 'get', 'orders', 'feature', ...on)).stdout).toBe('on\n');
    expect((await gc('kv', 'put', 'orders', 'feature', 'off', ...on)).stdout).toBe(
      'feature = off (revision 2)\n',
    );
    expect(await (await nodes[1]!.orders.kv()).get('feature').then((e) => e?.string())).toBe('off');
    const ls = await gc('kv', 'ls', 'orders', '--json', ...on);
    expect(json(ls)).toEqual({ app: 'orders', keys: ['feature'] });
  });

  it('a missing key or bucket is exit 4; a bad key exit 1', async () => {
    const missing = await gc('kv', 'get', 'orders', 'missing', ...on);
    expect(missing.error?.oclif?.exit).toBe(4);
    expect(missing.error?.message).toBe('key missing not found in app orders');
    const noBucket = await gc('kv', 'ls', 'ghost', ...on);
    expect(noBucket.error?.oclif?.exit).toBe(4);
    expect(noBucket.error?.message).toMatch(`app ghost of platform ${PLATFORM} has no KV bucket yet`);
    const badKey = await gc('kv', 'put', 'orders', 'bad key', 'x', ...on);
    expect(badKey.error?.oclif?.exit).toBe(1);
    expect(badKey.error?.message).toMatch(/^cannot write key "bad key": /);
    const noValue = await gc('kv', 'put', 'orders', 'k', ...on);
    expect(noValue.error?.oclif?.exit).toBe(2);
    expect(noValue.error?.message).toMatch(/Missing 1 required arg:\nvalue/);
  });
});

describe('gc lock and gc audit', () => {
  it('lists a held lock, force-releases it with a reason, and the audit trail records who did it', async () => {
    const lease = await (await nodes[0]!.orders.locks()).acquire('migrate', { ttlMs: 30_000 });
    try {
      const list = await gc('lock', 'list', '--app', 'orders', '--json', ...on);
      expect(list.code, list.stderr).toBe(0);
      expect(json(list)).toMatchObject([{ name: 'migrate', owner: 'a', epoch: lease.epoch }]);
      expect(json(await gc('lock', 'list', '--json', ...on))).toEqual([]); // platform-wide: none
      expect((await gc('lock', 'list', '--app', 'workers', ...on)).stdout).toBe(
        'no held locks for app workers\n',
      );

      const released = await gc(...forceReleaseMigrate('holder wedged'), '--json', ...on);
      expect(released.code, released.stdout).toBe(0);
      expect(json(released)).toMatchObject({ released: { name: 'migrate', owner: 'a' } });
      expect(json(await gc('lock', 'list', '--app', 'orders', '--json', ...on))).toEqual([]);
      const again = await gc(...forceReleaseMigrate('x'), ...on);
      expect(again.error?.oclif?.exit).toBe(4);
      expect(again.error?.message).toBe('lock migrate is not held');
    } finally {
      await lease.release().catch(() => undefined);
    }

    const q = await gc('audit', 'query', '--type', 'lock.forced', '--json', ...on);
    expect(q.code, q.stderr).toBe(0);
    expect(json(q)).toMatchObject([
      { type: 'lock.forced', app: 'orders', data: { lock: 'migrate', owner: 'a', reason: 'holder wedged' } },
    ]);
    const tail = await gc(...TAIL_LAST_FORCED, ...on);
    expect(tail.code, tail.stderr).toBe(0);
    expect(JSON.parse(tail.stdout.trim())).toMatchObject({ type: 'lock.forced', app: 'orders' });
    // The nodes' own records are there too: both activations of the apps they lead.
    const activated = json<Array<{ node: string; app: string }>>(
      await gc('audit', 'query', '--type', 'app.activated', '--app', 'orders', '--json', ...on),
    );
    expect(activated.map((r) => r.app)).toContain('orders');
  });

  it('lock release refuses without --force and --reason', async () => {
    const r = await gc('lock', 'release', 'migrate', '--app', 'orders', '--force', ...on);
    expect(r.error?.oclif?.exit).toBe(1);
    expect(r.error?.message).toBe(
      'releasing a lock that another node holds needs --force and --reason "<why>"',
    );
    const noLocks = await gc('lock', 'release', 'x', '--app', 'ghost', '--force', '--reason', 'y', ...on);
    expect(noLocks.error?.oclif?.exit).toBe(4);
    expect(noLocks.error?.message).toBe('no locks exist for app ghost');
    const slot = await gc('lock', 'release', 'x', '--slot', '-1', '--force', '--reason', 'y', ...on);
    expect(slot.error?.oclif?.exit).toBe(2);
  });

  it('audit query and tail refuse a --since that is neither a duration nor a date', async () => {
    for (const cmd of ['query', 'tail']) {
      const r = await gc('audit', cmd, '--since', 'yesterday-ish', ...on);
      expect(r.error?.oclif?.exit).toBe(1);
      expect(r.error?.message).toBe(
        '--since "yesterday-ish": use a duration (90s, 15m, 2h, 1d) or an ISO date',
      );
    }
    const limit = await gc('audit', 'query', '--limit', '0', ...on);
    expect(limit.error?.oclif?.exit).toBe(2);
  });
});

describe('gc app', () => {
  it('list and status: mode, leader and the role on every node', async () => {
    const list = await gc('app', 'list', '--json', ...on);
    expect(list.code, list.stderr).toBe(0);
    const apps = json<Array<{ name: string; mode: string; leader: string | null }>>(list);
    expect(apps.map((a) => [a.name, a.mode])).toEqual([
      ['cache', 'ring'],
      ['ledger', 'active-passive'],
      ['orders', 'active-passive'],
      ['workers', 'pool'],
    ]);
    const status = await gc('app', 'status', 'workers', '--json', ...on);
    expect(json(status)).toMatchObject({
      name: 'workers',
      mode: 'pool',
      roles: { a: 'active', b: 'active' },
    });
    const ledger = await gc('app', 'status', 'ledger', ...on);
    expect(ledger.code, ledger.stderr).toBe(0);
    expect(ledger.stdout).toMatch(`ledger · active-passive · leader ${leaderOf('ledger')}`);
    expect(ledger.stdout).toMatch(/NODE\s+ROLE\s+DB\s+TXID\s+LAG\s+STATE\s+WHY/);
  });

  it('status of an unknown app is exit 4; list of an empty platform exit 4', async () => {
    const r = await gc('app', 'status', 'nope', ...on);
    expect(r.error?.oclif?.exit).toBe(4);
    expect(r.error?.message).toBe(`no node of platform ${PLATFORM} runs an app called nope`);
    const empty = await gc('app', 'list', '--server', url, '--platform', 'nobody', '--timeout', '200');
    expect(empty.error?.oclif?.exit).toBe(4);
  });

  it('stepdown hands the leadership over to the other node', async () => {
    const before = leaderOf('orders');
    const r = await gc('app', 'stepdown', 'orders', '--json', ...on.slice(0, 4), '--timeout', '2000');
    expect(r.code, r.stdout).toBe(0);
    const s = json<{ from: string; epoch: number; newLeader: string | null; newEpoch: number | null }>(r);
    expect(s.from).toBe(before);
    expect(s.newLeader).not.toBe(before);
    expect(s.newLeader).not.toBeNull();
    expect(s.newEpoch).toBeGreaterThan(s.epoch);
  });

  it('stepdown of a pool app or an unknown app is exit 4', async () => {
    for (const app of ['workers', 'ghost']) {
      const r = await gc('app', 'stepdown', app, ...on);
      expect(r.error?.oclif?.exit, app).toBe(4);
      expect(r.error?.message).toMatch(`no node is the leader of app ${app}`);
    }
  });

  it('recover arms a node of an app with a database; refused without --yes or a database', async () => {
    const r = await gc(
      'app',
      'recover',
      'ledger',
      '--from',
      'b',
      '--reason',
      'a test',
      '--yes',
      '--json',
      ...on,
    );
    expect(r.code, r.stdout).toBe(0);
    expect(json(r)).toMatchObject({ app: 'ledger', node: 'b' });
    const noYes = await gc('app', 'recover', 'ledger', '--from', 'b', '--reason', 'x', ...on);
    expect(noYes.error?.oclif?.exit).toBe(1);
    expect(noYes.error?.message).toMatch(/^refusing without --yes/);
    // An app without a database cannot be recovered: the node refuses it at once, saying why (exit 1).
    const noDb = await gc('app', 'recover', 'orders', '--from', 'a', '--reason', 'x', '--yes', ...on);
    expect(noDb.error?.oclif?.exit).toBe(1);
    expect(noDb.error?.message).toMatch(/\borders\b.*\bsqlite database\b/);
    const noReason = await gc('app', 'recover', 'ledger', '--from', 'b', '--yes', ...on);
    expect(noReason.error?.oclif?.exit).toBe(2);
    expect(noReason.error?.message).toMatch(/Missing required flag reason/);
  });
});

describe('gc drill', () => {
  it('a stepdown drill passes its budget and is reported', async () => {
    const before = leaderOf('orders');
    const r = await gc('drill', 'stepdown', '--app', 'orders', '--budget-ms', '20000', '--json', ...on);
    expect(r.code, r.stdout).toBe(0);
    const report = json<{ pass: boolean; kind: string; from: { node: string }; to: { node: string } }>(r);
    expect(report).toMatchObject({ app: 'orders', kind: 'stepdown', pass: true, budgetMs: 20000 });
    expect(report.from.node).toBe(before);
    expect(report.to.node).not.toBe(before);
  });

  it('refuses an unknown kind, a bad schedule, a pool app and an unknown app', async () => {
    const kind = await gc('drill', 'explode', '--app', 'orders', ...on);
    expect(kind.error?.oclif?.exit).toBe(2);
    expect(kind.error?.message).toMatch(/Expected explode to be one of: failover, stepdown, server-restart/);
    const cron = await gc('drill', 'failover', '--app', 'orders', '--schedule', 'every tuesday', ...on);
    expect(cron.error?.oclif?.exit).toBe(1);
    expect(cron.error?.message).toMatch(/^--schedule "every tuesday" is not a cron expression/);
    const pool = await gc('drill', 'failover', '--app', 'workers', ...on);
    expect(pool.error?.oclif?.exit).toBe(1);
    expect(pool.error?.message).toMatch(/workers is a pool app: only active-passive apps/);
    const ghost = await gc('drill', 'failover', '--app', 'ghost', ...on);
    expect(ghost.error?.oclif?.exit).toBe(4);
  });
});

describe('gc ring', () => {
  it('show, pin a partition to the other node, unpin', async () => {
    const show = await gc('ring', 'show', 'cache', '--key', 'user:42', '--json', ...on);
    expect(show.code, show.stderr).toBe(0);
    const snap = json<{
      partitions: number;
      members: Array<{ nodeId: string }>;
      key: { partition: number };
    }>(show);
    expect(snap.partitions).toBe(8);
    expect(snap.members.map((m) => m.nodeId).sort()).toEqual(['a', 'b']);
    expect(snap.key.partition).toBe(nodes[0]!.cache.ring()!.partitionOf('user:42'));
    const table = await gc('ring', 'show', 'cache', '--partitions', ...on);
    expect(table.stdout).toMatch(new RegExp(`^ring ${PLATFORM}/cache: 8 partitions, 2 member\\(s\\)`));
    expect(table.stdout).toMatch(/PARTITION\s+OWNER\s+STATE\s+EPOCH\s+TARGET\s+PIN/);

    const part = nodes[0]!.cache.partitions()[0]!;
    const pin = await gc('ring', 'pin', 'cache', String(part), 'b', ...on);
    expect(pin.code, pin.stderr).toBe(0);
    expect(pin.stdout).toBe(`partition ${part} of cache pinned to b\n`);
    await vi.waitFor(() => expect(nodes[1]!.cache.partitions()).toContain(part), { timeout: 15_000 });
    expect(
      json<{ pins: Record<string, string> }>(await gc('ring', 'show', 'cache', '--json', ...on)).pins,
    ).toEqual({
      [part]: 'b',
    });
    const unpin = await gc('ring', 'unpin', 'cache', String(part), ...on);
    expect(unpin.code, unpin.stderr).toBe(0);
    expect(
      json<{ pins: Record<string, string> }>(await gc('ring', 'show', 'cache', '--json', ...on)).pins,
    ).toEqual({});
  });

  it('an unknown member or app is exit 4; a bad partition exit 1 or 2', async () => {
    const ghost = await gc('ring', 'pin', 'cache', '1', 'ghost', ...on);
    expect(ghost.error?.oclif?.exit).toBe(4);
    expect(ghost.error?.message).toMatch(/ghost/);
    expect((await gc('ring', 'pin', 'cache', '99', 'b', ...on)).error?.oclif?.exit).toBe(1);
    // oclif throws a plain Error for an argument that is not an integer: gc exits 1 with its message.
    const notInt = await gc('ring', 'pin', 'cache', 'x', 'b', ...on);
    expect(notInt.code).toBe(1);
    expect(notInt.error?.message).toBe('Expected an integer but received: x');
    const negative = await gc('ring', 'unpin', 'cache', ...on, '--', '-3');
    expect(negative.code).toBe(1);
    expect(negative.error?.message).toBe('Expected an integer greater than or equal to 0 but received: -3');
    const none = await gc('ring', 'show', 'orders', ...on);
    expect(none.error?.oclif?.exit).toBe(4);
    expect(none.error?.message).toMatch(`app orders of platform ${PLATFORM} has no ring`);
  });
});

describe('gc snapshot', () => {
  it('create (by the leader), list, restore (verified) and delete', async () => {
    const created = await gc('snapshot', 'create', 'ledger', '--json', ...on);
    expect(created.code, created.stdout).toBe(0);
    const info = json<{ name: string; txid: number; node: string }>(created);
    expect(info.node).toBe(leaderOf('ledger'));
    const list = await gc('snapshot', 'list', 'ledger', '--json', ...on);
    expect(json<Array<{ name: string }>>(list).map((s) => s.name)).toEqual([info.name]);
    const target = join(dir, 'restored.db');
    const restored = await gc('snapshot', 'restore', 'ledger', '--to', target, '--json', ...on);
    expect(restored.code, restored.stdout).toBe(0);
    expect(json(restored)).toMatchObject({ name: info.name, path: target });
    expect(existsSync(target)).toBe(true);
    const deleted = await gc('snapshot', 'delete', 'ledger', info.name, ...on);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe(`deleted ${info.name}\n`);
    expect(json(await gc('snapshot', 'list', 'ledger', '--json', ...on))).toEqual([]);
  });

  it('refuses what does not exist: exit 4; restore without --to: exit 2', async () => {
    const noDb = await gc('snapshot', 'create', 'workers', ...on);
    expect(noDb.error?.oclif?.exit).toBe(4);
    expect(noDb.error?.message).toBe('app workers has no replicated SQLite database (sqlite: in its config)');
    const del = await gc('snapshot', 'delete', 'ledger', 'snap-nope', ...on);
    expect(del.error?.oclif?.exit).toBe(4);
    expect(del.error?.message).toMatch(/^app ledger has no snapshot snap-nope/);
    const ghost = await gc('snapshot', 'restore', 'ghost', '--to', join(dir, 'x.db'), ...on);
    expect(ghost.error?.oclif?.exit).toBe(4);
    expect(ghost.error?.message).toBe('app ghost has no snapshots');
    expect((await gc('snapshot', 'list', 'ghost', ...on)).stdout).toBe('no snapshots of app ghost\n');
    const noTo = await gc('snapshot', 'restore', 'ledger', ...on);
    expect(noTo.error?.oclif?.exit).toBe(2);
    expect(noTo.error?.message).toMatch(/Missing required flag to/);
  });
});

describe('gc dev (its real runs are in e2e)', () => {
  it('--help', async () => {
    const r = await gc('dev', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/USAGE\n\s+\$ gc dev \[ACTION\]/);
    expect(r.stdout).toMatch(/--servers=<value>/);
  });

  it('refuses bad flags before it starts or creates anything', async () => {
    const state = join(dir, 'dev-state');
    const nodesFlag = await gc('dev', '--nodes', '10', '--dir', state);
    expect(nodesFlag.error?.oclif?.exit).toBe(2);
    expect(nodesFlag.error?.message).toMatch(/Expected an integer less than or equal to 9 but received: 10/);
    const servers = await gc('dev', '--servers', '2', '--dir', state);
    expect(servers.error?.oclif?.exit).toBe(1);
    expect(servers.error?.message).toBe('--servers must be 1 or 3, got 2');
    const busy = await gc('dev', '--port', String(server.config.port), '--dir', state);
    expect(busy.error?.oclif?.exit).toBe(1);
    expect(busy.error?.message).toMatch(/\(use gc dev --port to pick another\)$/);
    const action = await gc('dev', 'explode');
    expect(action.error?.oclif?.exit).toBe(2);
    expect(action.error?.message).toMatch(/Expected explode to be one of: kill/);
    expect(existsSync(state)).toBe(false);
  });

  it('kill: exit 3 with no server, exit 4 with no dev cluster on it', async () => {
    const noServer = await gc('dev', 'kill', '--port', String(await freePort()));
    expect(noServer.error?.oclif?.exit).toBe(3);
    expect(noServer.error?.message).toMatch(/\(is gc dev running\?\)$/);
    const noLeader = await gc(
      'dev',
      'kill',
      '--port',
      String(server.config.port),
      '--dir',
      join(dir, 'dev-state'),
    );
    expect(noLeader.error?.oclif?.exit).toBe(4);
    expect(noLeader.error?.message).toMatch(/^app orders has no leader in the dev cluster/);
  });
});

describe('coverage', () => {
  it('every command in src/commands ran in this file', () => {
    const ids = commandFiles().map((c) => c.id);
    expect(ids.length).toBeGreaterThan(20);
    expect(ids.filter((id) => !ran.has(id))).toEqual([]);
  });
});
