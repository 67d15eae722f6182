import { describe, expect, it } from 'vitest';
import { UnknownNodeError } from './errors.js';
import { budgetCount, plan, planDrain } from './plan.js';
import { schedule } from './schedule.js';
import type { PlacementApp, PlacementNode } from './types.js';

const nodes: PlacementNode[] = [
  { nodeId: 'n1', labels: { disk: 'ssd' } },
  { nodeId: 'n2', labels: { disk: 'ssd' } },
  { nodeId: 'n3', labels: { disk: 'hdd' } },
];

describe('plan', () => {
  it('lists what moves where and why', () => {
    const apps: PlacementApp[] = [
      { app: 'orders', mode: 'active-passive', placement: { onLabel: 'disk=ssd', maxNodes: 1 } },
      { app: 'web', mode: 'pool' },
      { app: 'gone', mode: 'pool', placement: { onLabel: 'disk=nvme' } },
      { app: 'same', mode: 'pool', placement: { onNodes: ['n3'] } },
    ];
    const current = {
      orders: { nodes: ['n3'], leader: 'n3' },
      web: { nodes: ['n1'] },
      gone: { nodes: ['n1'] },
      same: { nodes: ['n3'] },
      fresh: { nodes: ['n2'] },
    };
    const p = plan(current, schedule({ nodes, apps, current }));
    expect(p.unchanged).toEqual(['same']);
    expect(p.changes.map((c) => [c.app, c.kind, c.from, c.to])).toEqual([
      ['fresh', 'remove', ['n2'], []],
      ['gone', 'remove', ['n1'], []],
      ['orders', 'move', ['n3'], ['n1']],
      ['web', 'grow', [], ['n2', 'n3']],
    ]);
    const orders = p.changes.find((c) => c.app === 'orders')!;
    expect(orders.leader).toEqual({ from: 'n3', to: 'n1' });
    expect(orders.reasons[0]).toBe('n3: excluded by onLabel (labels do not match "disk=ssd")');
    expect(orders.reasons[1]).toMatch(/^n1: leader, score 0 \(affinity 0, load 0/);
    expect(p.changes[0]!.reasons).toEqual(['app "fresh" is no longer defined', 'n2: no longer considered']);
    expect(p.changes[1]!.reasons[0]).toMatch(
      /^no node set satisfies app "gone": 3 of 3 node\(s\) fail onLabel "disk=nvme"/,
    );
  });

  it('reports a leader-only change', () => {
    const apps: PlacementApp[] = [
      {
        app: 'db',
        mode: 'active-passive',
        placement: { preferLabel: [{ selector: 'disk=hdd', weight: 100 }] },
      },
    ];
    const current = { db: { nodes: ['n1', 'n2', 'n3'], leader: 'n1' } };
    const c = plan(current, schedule({ nodes, apps, current })).changes;
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ kind: 'leader', from: [], to: [], leader: { from: 'n1', to: 'n3' } });
    expect(c[0]!.reasons[0]).toMatch(
      /^leader n1 → n3: n3: leader, score 125 \(affinity 100, load 0, inventory 0, sticky 25\)/,
    );
  });
});

describe('planDrain', () => {
  const apps: PlacementApp[] = [
    { app: 'db', mode: 'active-passive', placement: { maxNodes: 2 }, budget: { minAvailable: 1 } },
    { app: 'cache', mode: 'active-passive', placement: { maxNodes: 2 }, budget: { maxUnavailable: 1 } },
    { app: 'web', mode: 'pool', placement: { maxNodes: 2 }, budget: { minAvailable: 2 } },
    { app: 'ssd', mode: 'pool', placement: { onLabel: 'disk=ssd' }, budget: { minAvailable: 1 } },
    { app: 'pinned', mode: 'pool', placement: { onNodes: ['n1'] } },
  ];
  const current = {
    db: { nodes: ['n1', 'n2'], leader: 'n1' },
    cache: { nodes: ['n1', 'n2'], leader: 'n1' },
    web: { nodes: ['n1', 'n2'] },
    ssd: { nodes: ['n1', 'n2'] },
    pinned: { nodes: ['n1'] },
  };

  it('moves what it may, and says what blocks the rest', () => {
    const d = planDrain('n1', { nodes, apps, current, maxParallel: 2 });
    expect(d.steps).toEqual([
      {
        app: 'cache',
        from: 'n1',
        to: 'n2',
        action: 'switchover',
        disruption: 1,
        available: { before: 1, during: 0 },
      },
      { app: 'ssd', from: 'n1', action: 'stop', disruption: 1, available: { before: 2, during: 1 } },
      {
        app: 'web',
        from: 'n1',
        to: 'n3',
        action: 'replace',
        disruption: 0,
        available: { before: 2, during: 2 },
      },
    ]);
    expect(d.waves).toEqual([['cache', 'ssd'], ['web']]);
    expect(d.complete).toBe(false);
    expect(d.blocked.map((b) => [b.app, b.reason])).toEqual([
      ['db', 'budget'],
      ['pinned', 'unsatisfiable'],
    ]);
    expect(d.blocked[0]!.message).toBe(
      'app "db" (active-passive) blocks the drain of n1: a switchover from n1 to n2 leaves no active instance while the hand-over runs; its disruption budget minAvailable 1 (= 1) forbids that. Allow maxUnavailable: 1 (a switchover takes seconds), or let the drain deadline force it',
    );
    expect(d.blocked[1]!.message).toMatch(
      /^app "pinned" cannot leave n1: no node set satisfies app "pinned": 2 of 3 node\(s\) fail onNodes \(n2, n3\)/,
    );
    expect(d.next.placements.db).toEqual(current.db);
    expect(d.next.placements.pinned).toEqual(current.pinned);
    expect(d.next.placements.web).toEqual({ nodes: ['n2', 'n3'] });
    expect(d.next.reasons.web!.n1).toMatchObject({ constraint: 'draining' });
  });

  it('blocks a shrink the budget forbids, and counts unavailable instances', () => {
    const tight: PlacementApp[] = [
      { app: 'ssd', mode: 'pool', placement: { onLabel: 'disk=ssd' }, budget: { minAvailable: 2 } },
    ];
    const d = planDrain('n1', { nodes, apps: tight, current });
    expect(d.blocked[0]!.message).toMatch(
      /stopping its instance on n1 \(no other node can take it\) leaves 1 of 2 available; its disruption budget minAvailable 2/,
    );
    // The instance on n1 is down anyway: stopping it disrupts nothing.
    const down = planDrain('n1', { nodes, apps: tight, current, unavailable: { ssd: ['n1'] } });
    expect(down.steps).toEqual([
      { app: 'ssd', from: 'n1', action: 'stop', disruption: 0, available: { before: 1, during: 1 } },
    ]);
    // A node that is gone counts as unavailable.
    const pct: PlacementApp[] = [
      { app: 'ssd', mode: 'pool', placement: { onLabel: 'disk=ssd' }, budget: { maxUnavailable: '50%' } },
    ];
    const gone = planDrain('n1', { nodes, apps: pct, current: { ssd: { nodes: ['n1', 'n2', 'n8', 'n9'] } } });
    expect(gone.blocked[0]!.message).toMatch(/maxUnavailable 50% \(= 2\)/);
  });

  it('refuses an unknown node', () => {
    expect(() => planDrain('n9', { nodes, apps, current })).toThrow(UnknownNodeError);
    expect(() => planDrain('n9', { nodes, apps, current })).toThrow(
      'node "n9" is not in the inventory (nodes: n1, n2, n3)',
    );
  });
});

it('resolves budget percentages rounding up', () => {
  expect(budgetCount('50%', 3)).toBe(2);
  expect(budgetCount('0%', 3)).toBe(0);
  expect(budgetCount(2, 3)).toBe(2);
});
