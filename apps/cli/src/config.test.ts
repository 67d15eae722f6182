import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig, starterConfig } from './config.js';

const base = { platform: 'prod', node: { id: 'node-a' } };

describe('gc.yaml validation', () => {
  it('accepts the starter config and fills defaults', () => {
    const c = parseConfig(
      parse(starterConfig({ platform: 'prod', nodeId: 'a', natsUrl: 'nats://127.0.0.1:4222' })),
      {},
    );
    expect(c.apps.orders).toMatchObject({ mode: 'active-passive', election: { ttlMs: 3000 }, kvReplicas: 1 });
    expect(c.apps.workers!.mode).toBe('pool');
    expect(c.http).toEqual({ enabled: true, host: '127.0.0.1', port: 8080 });
    expect(parseConfig({ ...base, http: false }, {}).http.enabled).toBe(false);
  });

  it('takes placement and a disruption budget per app, with the path of a bad selector', () => {
    const c = parseConfig(
      parse(`
platform: prod
node: { id: node-a, labels: { disk: ssd } }
apps:
  orders:
    placement:
      onLabel: disk=ssd
      preferLabel: [{ selector: "zone in (a,b)", weight: 30 }]
      maxNodes: 2
    budget: { maxUnavailable: 1 }
  web:
    mode: pool
    placement: { spread: { label: zone } }
    budget: { minAvailable: "50%" }
`),
      {},
    );
    expect(c.apps.orders).toMatchObject({
      placement: { onLabel: 'disk=ssd', maxNodes: 2 },
      budget: { maxUnavailable: 1 },
    });
    expect(c.apps.web!.budget).toEqual({ minAvailable: '50%' });
    expect(() =>
      parseConfig({ ...base, apps: { orders: { placement: { onLabel: 'zone in (a' } } } }, {}),
    ).toThrow(/apps\.orders\.placement\.onLabel/);
    expect(() => parseConfig({ ...base, apps: { orders: { placement: { onLable: 'x' } } } }, {})).toThrow(
      /apps\.orders\.placement: Unrecognized key: "onLable"/,
    );
    expect(() => parseConfig({ ...base, apps: { orders: { budget: { minAvailable: 1 } } } }, {})).toThrow(
      /apps\.orders\.budget: a disruption budget needs placement/,
    );
    expect(() => parseConfig({ ...base, apps: { c: { mode: 'ring', placement: {} } } }, {})).toThrow(
      /apps\.c\.placement: placement is not available for ring apps/,
    );
    expect(() =>
      parseConfig(
        { ...base, apps: { orders: { placement: {}, budget: { minAvailable: 1, maxUnavailable: 1 } } } },
        {},
      ),
    ).toThrow(/set minAvailable or maxUnavailable, not both/);
  });

  it('takes a migration policy per app and the migration limits of the node, with the path of a bad cron', () => {
    const c = parseConfig(
      parse(`
platform: prod
node: { id: node-a }
migrations: { cooldownMs: 60000, maxConcurrentMigrations: 2 }
apps:
  orders:
    placement: { onLabel: disk=ssd }
    migrate:
      cooldownMs: 300000
      windows: [{ cron: "0 2 * * 6", durationMs: 14400000, timezone: Europe/Berlin }]
`),
      {},
    );
    expect(c.migrations).toEqual({ cooldownMs: 60000, maxConcurrentMigrations: 2 });
    expect(c.apps.orders!.migrate).toEqual({
      cooldownMs: 300000,
      windows: [{ cron: '0 2 * * 6', durationMs: 14400000, timezone: 'Europe/Berlin' }],
    });
    const bad = (migrate: unknown) =>
      parseConfig({ ...base, apps: { orders: { placement: {}, migrate } } }, {});
    expect(() => bad({ windows: [{ cron: 'at night', durationMs: 1000 }] })).toThrow(
      /apps\.orders\.migrate\.windows\.0\.cron: "at night" is not a usable cron expression/,
    );
    expect(() => bad({ windows: [{ cron: '0 2 * * *', durationMs: 1000, timezone: 'Mars/Base' }] })).toThrow(
      /Mars\/Base/,
    );
    expect(() => bad({ cooldown: 5 })).toThrow(/apps\.orders\.migrate: Unrecognized key: "cooldown"/);
    expect(() => parseConfig({ ...base, apps: { orders: { migrate: { cooldownMs: 1 } } } }, {})).toThrow(
      /apps\.orders\.migrate: a migration policy needs placement/,
    );
    expect(() => parseConfig({ ...base, migrations: { maxConcurrentMigrations: 0 } }, {})).toThrow(
      /migrations\.maxConcurrentMigrations/,
    );
  });

  it('refuses unknown keys and wrong types with the path of each bad field', () => {
    expect(() => parseConfig({ ...base, node: { id: 'a', colour: 'red' } }, {})).toThrow(
      /node: Unrecognized key: "colour"/,
    );
    expect(() => parseConfig({ ...base, apps: { orders: { mode: 'shard' } } }, {})).toThrow(
      /apps\.orders\.mode: Invalid option/,
    );
    expect(
      parseConfig({ ...base, apps: { cache: { mode: 'ring', ring: { partitions: 64 } } } }, {}).apps.cache,
    ).toMatchObject({
      mode: 'ring',
      ring: { partitions: 64 },
    });
    expect(() =>
      parseConfig({ ...base, apps: { cache: { mode: 'ring', ring: { partitions: 0 } } } }, {}),
    ).toThrow(/apps\.cache\.ring\.partitions/);
    expect(() => parseConfig({ ...base, apps: { orders: { ring: { weight: 2 } } } }, {})).toThrow(
      /apps\.orders\.ring: ring options need mode ring; got mode active-passive/,
    );
    expect(() => parseConfig({ ...base, http: { port: 'x' } }, {})).toThrow(
      /http\.port: Invalid input: expected number/,
    );
    expect(() => parseConfig({ ...base, apps: { orders: { election: { ttlMs: -1 } } } }, {})).toThrow(
      /apps\.orders\.election\.ttlMs/,
    );
  });

  it('refuses invalid names with the naming rule', () => {
    expect(() => parseConfig({ ...base, platform: 'Prod_1' }, {})).toThrow(
      /platform: invalid platform name "Prod_1"/,
    );
    expect(() => parseConfig({ ...base, apps: { Bad_App: {} } }, {})).toThrow(
      /apps\.Bad_App: invalid app name "Bad_App"/,
    );
    expect(() => parseConfig({ ...base, node: { id: 'a.b' } }, {})).toThrow(/node\.id: invalid node id/);
  });

  it('refuses unsafe election timings with the rule they break', () => {
    expect(() =>
      parseConfig({ ...base, apps: { orders: { election: { ttlMs: 1000, renewDeadlineMs: 1500 } } } }, {}),
    ).toThrow(/apps\.orders\.election: .*renewDeadlineMs/);
  });

  it('refuses a recovery budget shorter than the worst-case detection its election timings allow, with the arithmetic', () => {
    const app = (recoveryBudgetMs: number, election: Record<string, unknown> = {}) =>
      parseConfig({ ...base, apps: { orders: { recoveryBudgetMs, election } } }, {});
    expect(() => app(3000)).toThrow(
      /apps\.orders\.recoveryBudgetMs: 3000 ms is shorter .*ttlMs 3000 \+ pollIntervalMs 250 = 3250 ms/,
    );
    expect(app(4000).apps.orders!.recoveryBudgetMs).toBe(4000);
    // Fast failover detects a dead leader sooner: the same budget fits.
    expect(app(1000, { fastFailover: true }).apps.orders!.recoveryBudgetMs).toBe(1000);
    expect(() => parseConfig({ ...base, apps: { w: { mode: 'pool', recoveryBudgetMs: 5000 } } }, {})).toThrow(
      /recoveryBudgetMs needs mode active-passive/,
    );
  });

  it('lets environment variables override file values', () => {
    const c = parseConfig(base, {
      GC_PLATFORM: 'staging',
      GC_NODE_ID: 'node-b',
      GC_NATS_URL: 'nats://a:4222, nats://b:4222',
      GC_HTTP_PORT: '9090',
      GC_LOG_LEVEL: 'DEBUG',
    });
    expect(c.platform).toBe('staging');
    expect(c.node.id).toBe('node-b');
    expect(c.nats.servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(c.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9090 });
    expect(c.log.level).toBe('debug');
    expect(() => parseConfig(base, { GC_HTTP_PORT: 'abc' })).toThrow(/GC_HTTP_PORT: must be an integer/);
    // LOG_LEVEL when GC_LOG_LEVEL is not set; GC_LOG_LEVEL wins.
    expect(parseConfig(base, { LOG_LEVEL: 'warn' }).log.level).toBe('warn');
    expect(parseConfig(base, { LOG_LEVEL: 'warn', GC_LOG_LEVEL: 'error' }).log.level).toBe('error');
  });

  it('accepts a backend and a VIP on an active-passive app and refuses them on a pool app', () => {
    const c = parseConfig(
      {
        ...base,
        apps: {
          web: {
            backend: { type: 'process', options: { command: 'node' } },
            vip: { address: '10.0.0.10/24', interface: 'eth0', arp: { count: 3 } },
          },
        },
      },
      {},
    );
    expect(c.apps.web!.backend).toEqual({ type: 'process', options: { command: 'node' } });
    const always = parseConfig(
      { ...base, apps: { web: { backend: { type: 'process', options: {} }, backendRuns: 'always' } } },
      {},
    );
    expect(always.apps.web!.backendRuns).toBe('always');
    expect(() => parseConfig({ ...base, apps: { web: { backendRuns: 'always' } } }, {})).toThrow(
      /apps\.web\.backendRuns: always needs a backend/,
    );
    expect(() =>
      parseConfig({ ...base, apps: { web: { backend: { type: 'process' }, backendRuns: 'sometimes' } } }, {}),
    ).toThrow(/apps\.web\.backendRuns/);
    expect(() =>
      parseConfig({ ...base, apps: { w: { mode: 'pool', backend: { type: 'process' } } } }, {}),
    ).toThrow(/apps\.w\.backend: backend needs mode active-passive/);
    expect(() => parseConfig({ ...base, apps: { web: { vip: { address: '10.0.0.10' } } } }, {})).toThrow(
      /apps\.web\.vip\.interface/,
    );
    expect(() => parseConfig({ ...base, apps: { web: { backend: { kind: 'process' } } } }, {})).toThrow(
      /apps\.web\.backend/,
    );
  });

  it('refuses a config that is not a mapping', () => {
    expect(() => parseConfig('platform: x', {})).toThrow(/must be a mapping/);
    expect(() => parseConfig(null, {})).toThrow(/must be a mapping/);
  });
});
