// The migration gate through decide(): cooldowns, maintenance windows, concurrency, rebalances, refusals.
import { describe, expect, it } from 'vitest';
import { decide, type DecideInput } from './decide.js';
import type { DeclaredApp } from './records.js';
import { asState, decideInput, drainAdmin, type TestNode } from './test/decide-input.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');

const input = (nodes: Record<string, TestNode>, o: Partial<DecideInput> = {}) =>
  decideInput(nodes, { now: T0, ...o });
const state = (d: ReturnType<typeof decide>) => asState(d);

const ssd = (migrate?: DeclaredApp['migrate']): DeclaredApp => ({
  mode: 'active-passive',
  placement: { onLabel: 'disk=ssd' },
  ...(migrate ? { migrate } : {}),
});

/** orders led by a (ssd), standby c (ssd); then a is relabelled hdd. */
function relabelled(app: DeclaredApp) {
  const before = {
    a: { labels: { disk: 'ssd' }, apps: { orders: app }, active: ['orders'] },
    b: { labels: { disk: 'hdd' }, apps: { orders: app } },
    c: { labels: { disk: 'ssd' }, apps: { orders: app } },
  };
  const first = decide(input(before));
  expect(first.placements.orders).toEqual({ nodes: ['a', 'c'], leader: 'a' });
  const after = { ...before, a: { ...before.a, labels: { disk: 'hdd' } } };
  return { first, after };
}

describe('the migration gate', () => {
  it('lets a first automatic migration through and records when it happened; a second waits for the cooldown', () => {
    const { first, after } = relabelled(ssd());
    const moved = decide(input(after, { previous: state(first) }));
    expect(moved.placements.orders).toEqual({ nodes: ['c'], leader: 'c' });
    expect(moved.migrated.orders).toBe(T0);
    expect(moved.started).toEqual([{ app: 'orders', cause: 'automatic' }]);
    expect(moved.deferred).toEqual({});

    // Ten seconds later the app would move again (c is relabelled too, a back to ssd): the cooldown holds it.
    const back = {
      a: { labels: { disk: 'ssd' }, apps: { orders: ssd() } },
      b: { labels: { disk: 'hdd' }, apps: { orders: ssd() } },
      c: { labels: { disk: 'hdd' }, apps: { orders: ssd() }, active: ['orders'] },
    };
    const held = decide(input(back, { previous: state(moved), now: T0 + 10_000 }));
    expect(held.placements.orders).toMatchObject({ leader: 'c' });
    expect(held.placements.orders!.nodes).toContain('c');
    expect(held.deferred.orders).toMatch(
      /^cooldown: it migrated at 2026-12-03T10:00:00.000Z; .* 2026-12-03T10:00:30.000Z/,
    );
    expect(held.started).toEqual([]);
    // After the cooldown it goes.
    const later = decide(input(back, { previous: state(held), now: T0 + 31_000 }));
    expect(later.placements.orders).toEqual({ nodes: ['a'], leader: 'a' });
    expect(later.deferred).toEqual({});
  });

  it('defers an automatic migration outside the maintenance windows, says when the next opens, and does it inside', () => {
    const windows = [{ cron: '0 2 * * *', durationMs: 3_600_000, timezone: 'UTC' }];
    const { first, after } = relabelled(ssd({ windows }));
    const held = decide(input(after, { previous: state(first) }));
    expect(held.placements.orders).toEqual({ nodes: ['a', 'c'], leader: 'a' });
    expect(held.deferred.orders).toBe(
      'outside its maintenance windows; the next opens at 2026-12-04T02:00:00.000Z',
    );
    // The reason is stable from one tick to the next (no rewrite every tick).
    const tick = decide(input(after, { previous: state(held), now: T0 + 2000 }));
    expect(tick.deferred).toEqual(held.deferred);
    const inWindow = decide(input(after, { previous: state(held), now: Date.parse('2026-12-04T02:00:05Z') }));
    expect(inWindow.placements.orders).toEqual({ nodes: ['c'], leader: 'c' });
    expect(inWindow.deferred).toEqual({});
  });

  it('lets drains and operator moves through outside a window and within a cooldown', () => {
    const windows = [{ cron: '0 2 * * *', durationMs: 60_000, timezone: 'UTC' }];
    const app = ssd({ windows, cooldownMs: 3_600_000 });
    const nodes = {
      a: { labels: { disk: 'ssd' }, apps: { orders: app }, active: ['orders'] },
      c: { labels: { disk: 'ssd' }, apps: { orders: app } },
    };
    const first = decide(input(nodes));
    const drain = drainAdmin(T0, 600_000, 'kernel');
    const drained = decide(
      input(nodes, { previous: state(first), admins: new Map([['a', drain]]), now: T0 + 1000 }),
    );
    expect(drained.placements.orders!.leader).toBe('c');
    expect(drained.deferred).toEqual({});
    expect(drained.started).toEqual([{ app: 'orders', cause: 'operator' }]);
    const move = { to: 'c', reason: 'op', by: 'op', at: T0 };
    const moved = decide(
      input(nodes, { previous: state(first), moves: new Map([['orders', move]]), now: T0 + 1000 }),
    );
    expect(moved.placements.orders!.leader).toBe('c');
    expect(moved.deferred).toEqual({});
  });

  it('starts at most maxConcurrentMigrations automatic migrations; the others wait for a slot', () => {
    const pool = (): DeclaredApp => ({ mode: 'pool', placement: { onLabel: 'tier=web', maxNodes: 1 } });
    const apps = { w1: pool(), w2: pool(), w3: pool() };
    const before = {
      a: { labels: { tier: 'web' }, apps, active: ['w1', 'w2', 'w3'] },
      b: { labels: { tier: 'db' }, apps },
    };
    const first = decide(input(before));
    expect(Object.values(first.placements).map((p) => p.nodes.join())).toEqual(['a', 'a', 'a']);
    const after = { a: { ...before.a, labels: { tier: 'db' } }, b: { ...before.b, labels: { tier: 'web' } } };
    const limits = { cooldownMs: 0, maxConcurrentMigrations: 1 };
    const d = decide(input(after, { previous: state(first), limits }));
    expect(d.started).toEqual([{ app: 'w1', cause: 'automatic' }]);
    expect(d.placements.w1!.nodes).toEqual(['b']);
    // The waiting ones keep a (and may add b): nothing is taken away from them.
    expect(d.placements.w2!.nodes).toContain('a');
    expect(d.deferred.w2).toBe('waits for a migration slot (maxConcurrentMigrations 1)');
    expect(Object.keys(d.deferred).sort()).toEqual(['w2', 'w3']);
    // Once w1 runs on b (and only there), the next one goes.
    const settled = {
      a: { ...after.a, active: ['w2', 'w3'] },
      b: { ...after.b, active: ['w1'] },
    };
    const d2 = decide(input(settled, { previous: state(d), limits, now: T0 + 1000 }));
    expect(d2.started.map((s) => s.app)).toEqual(['w2']);
    expect(Object.keys(d2.deferred)).toEqual(['w3']);
  });

  it('does not hold back an app whose node died, or which a node stopped declaring', () => {
    const windows = [{ cron: '0 2 * * *', durationMs: 60_000, timezone: 'UTC' }];
    const app = ssd({ windows });
    const nodes = {
      a: { labels: { disk: 'ssd' }, apps: { orders: app }, active: ['orders'] },
      c: { labels: { disk: 'ssd' }, apps: { orders: app } },
    };
    const first = decide(input(nodes));
    const died = decide(input({ c: nodes.c }, { previous: state(first) }));
    expect(died.placements.orders).toEqual({ nodes: ['c'], leader: 'c' });
    expect(died.deferred).toEqual({});
    const undeclared = decide(input({ ...nodes, a: { ...nodes.a, apps: {} } }, { previous: state(first) }));
    expect(undeclared.placements.orders!.leader).toBe('c');
    expect(undeclared.deferred).toEqual({});
  });

  it('places a rebalanced app afresh (no stickiness, no cooldown) and reports the rebalance applied', () => {
    const pool = (): DeclaredApp => ({ mode: 'pool', placement: { maxNodes: 1 } });
    const apps = { p1: pool(), p2: pool(), p3: pool(), p4: pool() };
    const one = { a: { apps, active: Object.keys(apps) } };
    const first = decide(input(one));
    expect(Object.values(first.placements).every((p) => p.nodes.join() === 'a')).toBe(true);
    // b joins: the apps stay where they run (hysteresis) until rebalanced.
    const two = { ...one, b: { apps } };
    const joined = decide(input(two, { previous: state(first), now: T0 + 1000 }));
    const onB = (d: ReturnType<typeof decide>) =>
      Object.entries(d.placements).filter(([, p]) => p.nodes.includes('b')).length;
    const rebalances = new Map(
      Object.keys(apps).map((app) => [app, { reason: 'node b joined', by: 'op', at: T0 }]),
    );
    const r = decide(
      input(two, {
        previous: state(joined),
        rebalances,
        limits: { cooldownMs: 3_600_000, maxConcurrentMigrations: 4 },
        now: T0 + 2000,
      }),
    );
    expect(onB(r)).toBeGreaterThan(onB(joined));
    expect(onB(r)).toBe(2);
    expect(r.rebalanced.sort()).toEqual(['p1', 'p2', 'p3', 'p4']);
  });

  it('reports the nodes where onMigrationStart keeps an app', () => {
    const d = decide(
      input({
        a: {
          apps: { orders: ssd() },
          labels: { disk: 'ssd' },
          refused: { orders: 'a batch job is running' },
        },
        b: { apps: { orders: ssd() }, labels: { disk: 'ssd' } },
      }),
    );
    expect(d.refused).toEqual({ orders: 'a: a batch job is running' });
  });
});

describe('the migration gate, against what adversaries found', () => {
  const prefer = (migrate?: DeclaredApp['migrate']): DeclaredApp => ({
    mode: 'active-passive',
    placement: { preferLabel: [{ selector: 'fast=yes', weight: 100 }] },
    ...(migrate ? { migrate } : {}),
  });

  it('does not undo an automatic lead move on the next tick while the old leader still leads', () => {
    const before = { n1: { apps: { db: prefer() }, active: ['db'] }, n2: { apps: { db: prefer() } } };
    const first = decide(input(before));
    expect(first.placements.db!.leader).toBe('n1');
    const labelled = { ...before, n2: { ...before.n2, labels: { fast: 'yes' } } };
    const d1 = decide(input(labelled, { previous: state(first), now: T0 + 1000 }));
    expect(d1.placements.db!.leader).toBe('n2');
    expect(d1.started).toEqual([{ app: 'db', cause: 'automatic' }]);
    // n1 still leads (the hand-over takes a while): the move is in progress, not a new one to defer.
    for (const t of [3000, 5000, 31_000]) {
      const d = decide(input(labelled, { previous: state(d1), now: T0 + t }));
      expect(d.placements.db!.leader, `at +${t} ms`).toBe('n2');
      expect(d.deferred).toEqual({});
      expect(d.started).toEqual([]);
    }
  });

  it('keeps a deferred app exactly where the last decision put it (maxNodes holds)', () => {
    const windows = [{ cron: '0 2 * * 6', durationMs: 3_600_000, timezone: 'UTC' }];
    const app: DeclaredApp = {
      mode: 'pool',
      placement: { onLabel: 'disk=ssd', maxNodes: 1 },
      migrate: { windows },
    };
    const nodes = {
      n1: { labels: { disk: 'ssd' }, apps: { web: app }, active: ['web'] },
      n2: { labels: { disk: 'ssd' }, apps: { web: app } },
    };
    const first = decide(input(nodes));
    expect(first.placements.web!.nodes).toEqual(['n1']);
    const d = decide(
      input({ ...nodes, n1: { ...nodes.n1, labels: { disk: 'hdd' } } }, { previous: state(first) }),
    );
    expect(d.deferred.web).toMatch(/outside its maintenance windows/);
    expect(d.placements.web!.nodes).toEqual(['n1']);
  });

  it("lets a drained node go even when the rest of the app's change waits for a window", () => {
    const windows = [{ cron: '0 2 * * 6', durationMs: 3_600_000, timezone: 'UTC' }];
    const app: DeclaredApp = { mode: 'pool', placement: { onLabel: 'disk=ssd' }, migrate: { windows } };
    const nodes = {
      n1: { labels: { disk: 'ssd' }, apps: { web: app }, active: ['web'] },
      n2: { labels: { disk: 'ssd' }, apps: { web: app }, active: ['web'] },
      n3: { labels: { disk: 'ssd' }, apps: { web: app }, active: ['web'] },
    };
    const first = decide(input(nodes));
    expect(first.placements.web!.nodes).toEqual(['n1', 'n2', 'n3']);
    const drain = drainAdmin(T0, 60_000, 'kernel');
    const mixed = { ...nodes, n2: { ...nodes.n2, labels: { disk: 'hdd' } } };
    const admins = new Map([['n1', drain]]);
    let prev = state(first);
    let d = decide(input(mixed, { previous: prev, admins, now: T0 }));
    prev = state(d);
    d = decide(input(mixed, { previous: prev, admins, now: T0 + 120_000 }));
    expect(d.draining.n1).toMatchObject({ forced: true, remaining: [] });
    expect(d.placements.web!.nodes).not.toContain('n1');
    // The relabelled n2 waits for the window; n1 is gone all the same.
    expect(d.placements.web!.nodes).toContain('n2');
    expect(d.deferred.web).toMatch(/outside its maintenance windows/);
  });

  it('a migration policy this scheduler cannot use holds only that app back, with why', () => {
    const bad = { windows: [{ cron: '0 2 * * *', durationMs: 1000, timezone: 'Mars/Olympus' }] };
    const other: DeclaredApp = { mode: 'pool', placement: { onLabel: 'disk=ssd' } };
    const odd: DeclaredApp = {
      mode: 'pool',
      placement: { onLabel: 'disk=ssd' },
      migrate: bad,
    };
    const nodes = {
      n1: { labels: { disk: 'ssd' }, apps: { odd, other }, active: ['odd', 'other'] },
      n2: { labels: { disk: 'ssd' }, apps: { odd, other } },
    };
    const first = decide(input(nodes));
    const relabelled = { ...nodes, n1: { ...nodes.n1, labels: { disk: 'hdd' } } };
    const d = decide(input(relabelled, { previous: state(first) }));
    expect(d.placements.other!.nodes).toEqual(['n2']);
    expect(d.placements.odd!.nodes).toContain('n1');
    expect(d.deferred.odd).toMatch(/its migration policy cannot be used here .*Mars\/Olympus/);
    // Garbage of another shape does not throw either.
    const garbage = { ...odd, migrate: { windows: 'sometimes' } as unknown as DeclaredApp['migrate'] };
    expect(() =>
      decide(
        input(
          { ...relabelled, n2: { ...relabelled.n2, apps: { odd: garbage, other } } },
          { previous: state(first) },
        ),
      ),
    ).not.toThrow();
  });

  it("keeps an app's own cooldown longer than a slot across unrelated decisions", () => {
    const app = ssd({ cooldownMs: 3_600_000 });
    const { first, after } = relabelled(app);
    const moved = decide(input(after, { previous: state(first) }));
    expect(moved.migrated.orders).toBe(T0);
    const later = decide(input(after, { previous: state(moved), now: T0 + 130_000 }));
    expect(later.migrated.orders).toBe(T0);
    const back = {
      a: { labels: { disk: 'ssd' }, apps: { orders: app } },
      b: { labels: { disk: 'hdd' }, apps: { orders: app } },
      c: { labels: { disk: 'hdd' }, apps: { orders: app }, active: ['orders'] },
    };
    const held = decide(input(back, { previous: state(later), now: T0 + 200_000 }));
    expect(held.deferred.orders).toMatch(/^cooldown/);
    expect(held.wakeAt).toBe(T0 + 3_600_000);
  });

  it('counts active-passive moves that have not converged against the slots', () => {
    const apps = { a1: prefer(), a2: prefer(), a3: prefer() };
    const before = { n1: { apps, active: ['a1', 'a2', 'a3'] }, n2: { apps } };
    const first = decide(input(before));
    const labelled = { ...before, n2: { ...before.n2, labels: { fast: 'yes' } } };
    const limits = { cooldownMs: 0, maxConcurrentMigrations: 1 };
    let prev = state(first);
    const startedAll: string[] = [];
    for (let t = 1; t <= 5; t++) {
      const d = decide(input(labelled, { previous: prev, limits, now: T0 + t * 2000 }));
      startedAll.push(...d.started.map((s) => s.app));
      prev = state(d);
    }
    // Nothing converged (n1 still leads all three): one migration at a time.
    expect(startedAll).toEqual(['a1']);
  });
});
