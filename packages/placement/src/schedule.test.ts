import { ConfigError, InvalidNameError } from '@gc/core';
import { describe, expect, it } from 'vitest';
import { SelectorSyntaxError } from './errors.js';
import { schedule } from './schedule.js';
import type { PlacementApp, PlacementNode } from './types.js';

const nodes: PlacementNode[] = [
  { nodeId: 'n1', labels: { disk: 'ssd', zone: 'a' } },
  { nodeId: 'n2', labels: { disk: 'ssd', zone: 'b' } },
  { nodeId: 'n3', labels: { disk: 'hdd', zone: 'a' } },
  { nodeId: 'n4', labels: { disk: 'hdd', zone: 'c', gpu: 'yes' } },
];

describe('hard constraints', () => {
  it('places an app only on nodes matching onLabel, with reasons for the others', () => {
    const r = schedule({
      nodes,
      apps: [{ app: 'orders', mode: 'active-passive', placement: { onLabel: 'disk=ssd' } }],
    });
    expect(r.placements.orders).toEqual({ nodes: ['n1', 'n2'], leader: 'n1' });
    expect(r.reasons.orders!.n3).toEqual({
      status: 'excluded',
      constraint: 'onLabel',
      detail: 'labels do not match "disk=ssd"',
    });
    expect(r.reasons.orders!.n1).toMatchObject({ status: 'selected', role: 'leader' });
    expect(r.reasons.orders!.n2).toMatchObject({ status: 'selected', role: 'standby' });
  });

  it('honours avoidLabel, onNodes and cordon (a cordoned node keeps what it runs)', () => {
    const apps: PlacementApp[] = [
      { app: 'a', mode: 'pool', placement: { avoidLabel: ['gpu', 'zone=b'] } },
      { app: 'b', mode: 'pool', placement: { onNodes: ['n2', 'n4', 'n9'] } },
      { app: 'c', mode: 'pool' },
    ];
    const cordoned = nodes.map((n) => (n.nodeId === 'n1' ? { ...n, cordoned: true } : n));
    const r = schedule({ nodes: cordoned, apps, current: { a: { nodes: ['n1'] } } });
    expect(r.placements.a!.nodes).toEqual(['n1', 'n3']); // n1 is cordoned but already runs a
    expect(r.placements.b!.nodes).toEqual(['n2', 'n4']);
    expect(r.placements.c!.nodes).toEqual(['n2', 'n3', 'n4']);
    expect(r.reasons.c!.n1).toMatchObject({ constraint: 'cordoned' });
    expect(r.reasons.b!.n1).toMatchObject({ constraint: 'onNodes' });
  });

  it('keeps awayFromApp apart both ways and co-locates withApp (scheduled after its target)', () => {
    const apps: PlacementApp[] = [
      { app: 'web', mode: 'pool', placement: { withApp: ['db'] } },
      { app: 'db', mode: 'active-passive', placement: { onLabel: 'disk=ssd', maxNodes: 2 } },
      { app: 'batch', mode: 'pool', placement: { maxNodes: 4 } },
      { app: 'analytics', mode: 'pool', placement: { awayFromApp: ['batch'] } },
    ];
    const r = schedule({ nodes, apps });
    expect(r.order).toEqual(['analytics', 'batch', 'db', 'web']);
    expect(r.placements.analytics!.nodes).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(r.unsatisfiable.batch!.message).toBe(
      'no node set satisfies app "batch": 4 of 4 node(s) fail awayFromApp "analytics" (n1, n2, n3, n4)',
    );
    expect(r.placements.web!.nodes).toEqual(r.placements.db!.nodes);
  });

  it('prefers the withApp target leader as leader', () => {
    const apps: PlacementApp[] = [
      { app: 'db', mode: 'active-passive', placement: { preferLabel: [{ selector: 'zone=b', weight: 50 }] } },
      {
        app: 'api',
        mode: 'active-passive',
        placement: { withApp: ['db'], preferLabel: [{ selector: 'zone=a', weight: 100 }] },
      },
    ];
    const r = schedule({ nodes, apps });
    expect(r.placements.db!.leader).toBe('n2');
    expect(r.placements.api!.leader).toBe('n2');
  });

  it('stops at capacity', () => {
    const small = nodes.map((n) => ({ ...n, capacity: 1 }));
    const apps: PlacementApp[] = ['a', 'b', 'c', 'd', 'e'].map((app) => ({
      app,
      mode: 'pool',
      placement: { maxNodes: 1 },
    }));
    const r = schedule({ nodes: small, apps });
    expect(
      Object.values(r.placements)
        .map((p) => p.nodes[0])
        .sort(),
    ).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(r.unsatisfiable.e).toMatchObject({ constraint: 'capacity' });
    expect(r.unsatisfiable.e!.message).toContain('4 of 4 node(s) fail capacity');
  });

  it('spreads over a label with a max skew, as many nodes as the skew allows', () => {
    const many: PlacementNode[] = [
      ...['a1', 'a2', 'a3', 'a4'].map((id) => ({ nodeId: id, labels: { zone: 'a' } })),
      ...['b1', 'b2'].map((id) => ({ nodeId: id, labels: { zone: 'b' } })),
      { nodeId: 'c1', labels: { zone: 'c' } },
      { nodeId: 'x1' },
    ];
    const r = schedule({
      nodes: many,
      apps: [
        { app: 'one', mode: 'pool', placement: { spread: { label: 'zone' } } },
        { app: 'two', mode: 'pool', placement: { spread: { label: 'zone', maxSkew: 2 } } },
        { app: 'four', mode: 'pool', placement: { spread: { label: 'zone', maxSkew: 2 }, maxNodes: 4 } },
        { app: 'six', mode: 'pool', placement: { spread: { label: 'zone' }, minNodes: 6 } },
      ],
    });
    const zones = (ids: readonly string[]) => ids.map((id) => id[0]).join('');
    expect(zones(r.placements.one!.nodes)).toBe('aabbc'); // 2/2/1
    expect(zones(r.placements.two!.nodes)).toBe('aaabbc'); // 3/2/1
    expect(zones(r.placements.four!.nodes)).toBe('aabc');
    expect(r.reasons.one!.x1).toMatchObject({
      constraint: 'spread',
      detail: 'no label "zone" to spread over',
    });
    const passed = Object.entries(r.reasons.one!).filter(([, why]) => why.status === 'not-selected');
    expect(passed.map(([id]) => id[0])).toEqual(['a', 'a']);
    expect(passed[0]![1]).toMatchObject({
      detail: 'spread over "zone": domain "a" has its share (2) with maxSkew 1',
    });
    expect(r.unsatisfiable.six!.message).toBe(
      'no node set satisfies app "six": it needs minNodes 6 but spread over "zone" with maxSkew 1 allows at most 5 of the 7 qualifying node(s) (a: 4, b: 2, c: 1); 1 of 8 node(s) fail spread (label "zone" missing) (x1)',
    );
  });
});

it('keeps the skew hard against strong preferences', () => {
  const zoned: PlacementNode[] = ['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'c1'].map((id) => ({
    nodeId: id,
    labels: { zone: id[0]! },
  }));
  const r = schedule({
    nodes: zoned,
    apps: [
      {
        app: 'x',
        mode: 'pool',
        placement: {
          spread: { label: 'zone' },
          maxNodes: 4,
          preferLabel: [
            { selector: 'zone=a', weight: 100 },
            { selector: 'zone=b', weight: 50 },
          ],
        },
      },
    ],
  });
  expect(r.placements.x!.nodes.map((id) => id[0]).join('')).toBe('aabc');
});

describe('unsatisfiable', () => {
  it('says which constraint excludes which nodes', () => {
    const r = schedule({
      nodes: nodes.map((n) => (n.nodeId === 'n2' ? { ...n, cordoned: true } : n)),
      apps: [
        { app: 'orders', mode: 'active-passive', placement: { onLabel: 'disk=ssd', avoidLabel: 'zone=a' } },
        { app: 'three', mode: 'pool', placement: { onLabel: 'disk=hdd', minNodes: 3 } },
        { app: 'lonely', mode: 'pool', placement: { withApp: ['ghost'] } },
        { app: 'p', mode: 'pool', placement: { withApp: ['q'] } },
        { app: 'q', mode: 'pool', placement: { withApp: ['p'] } },
        { app: 'follower', mode: 'pool', placement: { withApp: ['orders'] } },
      ],
    });
    expect(r.unsatisfiable.orders).toEqual({
      app: 'orders',
      constraint: 'onLabel',
      message:
        'no node set satisfies app "orders": 2 of 4 node(s) fail onLabel "disk=ssd" (n3, n4); 1 of 4 node(s) fail avoidLabel "zone=a" (n1); 1 of 4 node(s) fail cordoned (n2)',
    });
    expect(r.unsatisfiable.three!.message).toBe(
      'no node set satisfies app "three": it needs minNodes 3 but only 2 of 4 node(s) qualify; 2 of 4 node(s) fail onLabel "disk=hdd" (n1, n2)',
    );
    expect(r.unsatisfiable.lonely!.message).toMatch(
      /co-located with app "ghost" \(withApp\), which is not defined/,
    );
    expect(r.unsatisfiable.p!.message).toMatch(/withApp forms a cycle \(p, q\)/);
    expect(r.unsatisfiable.follower!.message).toBe(
      'no node set satisfies app "follower": it is co-located with app "orders" (withApp), which could not be placed (2 of 4 node(s) fail onLabel "disk=ssd" (n3, n4); 1 of 4 node(s) fail avoidLabel "zone=a" (n1); 1 of 4 node(s) fail cordoned (n2))',
    );
    expect(r.placements.orders).toBeUndefined();
  });

  it('with no nodes', () => {
    expect(schedule({ nodes: [], apps: [{ app: 'a', mode: 'pool' }] }).unsatisfiable.a!.message).toBe(
      'no node set satisfies app "a": there are no nodes',
    );
  });
});

describe('scores and hysteresis', () => {
  const two: PlacementNode[] = [
    { nodeId: 'n1', labels: { tier: 'gold' } },
    { nodeId: 'n2', labels: { tier: 'silver' } },
  ];
  const prefer = (w: number): PlacementApp => ({
    app: 'orders',
    mode: 'active-passive',
    placement: { maxNodes: 1, preferLabel: [{ selector: 'tier=gold', weight: w }] },
  });

  it('keeps an app where it is unless another node scores more than the hysteresis higher', () => {
    const current = { orders: { nodes: ['n2'], leader: 'n2' } };
    expect(schedule({ nodes: two, apps: [prefer(20)], current }).placements.orders).toEqual(current.orders);
    expect(schedule({ nodes: two, apps: [prefer(30)], current }).placements.orders).toEqual({
      nodes: ['n1'],
      leader: 'n1',
    });
    expect(
      schedule({ nodes: two, apps: [prefer(30)], current, options: { hysteresis: 40 } }).placements.orders,
    ).toEqual(current.orders);
  });

  it('keeps the current leader the same way', () => {
    const app: PlacementApp = {
      ...prefer(20),
      placement: { preferLabel: [{ selector: 'tier=gold', weight: 20 }] },
    };
    const current = { orders: { nodes: ['n1', 'n2'], leader: 'n2' } };
    expect(schedule({ nodes: two, apps: [app], current }).placements.orders!.leader).toBe('n2');
    expect(schedule({ nodes: two, apps: [app] }).placements.orders!.leader).toBe('n1');
  });

  it('moves an app off a node that became ineligible (label change)', () => {
    const app: PlacementApp = { app: 'orders', mode: 'active-passive', placement: { onLabel: 'tier=gold' } };
    const relabelled = [
      { nodeId: 'n1', labels: { tier: 'bronze' } },
      { nodeId: 'n2', labels: { tier: 'gold' } },
    ];
    const r = schedule({
      nodes: relabelled,
      apps: [app],
      current: { orders: { nodes: ['n1'], leader: 'n1' } },
    });
    expect(r.placements.orders).toEqual({ nodes: ['n2'], leader: 'n2' });
  });

  it('balances active instances by load and node weight, and avoids busy CPUs', () => {
    const apps: PlacementApp[] = Array.from({ length: 30 }, (_, i) => ({
      app: `a${i}`,
      mode: 'pool',
      placement: { maxNodes: 1 },
    }));
    const r = schedule({
      nodes: [
        { nodeId: 'big', weight: 2 },
        { nodeId: 'small' },
        { nodeId: 'busy', inventory: { cpus: 2, memoryBytes: 1, diskFreeBytes: 1, load1: 4 } },
      ],
      apps,
    });
    const per: Record<string, number> = {};
    for (const p of Object.values(r.placements)) per[p.nodes[0]!] = (per[p.nodes[0]!] ?? 0) + 1;
    expect(per.big).toBeGreaterThan(per.small!);
    expect(per.small).toBeGreaterThan(per.busy!);
    expect(r.reasons.a0!.busy).toMatchObject({ score: { inventory: -20 } });
  });

  it('records a score breakdown', () => {
    const r = schedule({ nodes: two, apps: [prefer(30)], current: { orders: { nodes: ['n2'] } } });
    expect(r.reasons.orders!.n2).toEqual({
      status: 'not-selected',
      detail: 'maxNodes 1 taken by higher scores',
      score: { affinity: 0, load: -0, inventory: -0, sticky: 25, total: 25 },
    });
    expect(r.reasons.orders!.n1).toMatchObject({ status: 'selected', score: { affinity: 30, total: 30 } });
  });

  it('can skip the reasons', () => {
    expect(schedule({ nodes: two, apps: [prefer(30)], options: { explain: false } }).reasons).toEqual({
      orders: {},
    });
  });
});

describe('input validation', () => {
  it.each([
    [{ nodes: [{ nodeId: 'n 1' }], apps: [] }, InvalidNameError, /invalid node id name/],
    [{ nodes: [{ nodeId: 'n1' }, { nodeId: 'n1' }], apps: [] }, ConfigError, /nodes\.n1: appears twice/],
    [
      { nodes: [{ nodeId: 'n1', weight: 0 }], apps: [] },
      ConfigError,
      /nodes\.n1\.weight: must be a number in \(0, 1000\]/,
    ],
    [{ nodes: [], apps: [{ app: 'Orders', mode: 'pool' }] }, InvalidNameError, /invalid app name "Orders"/],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'leader' }] },
      ConfigError,
      /apps\.o\.mode: must be one of active-passive, pool, ring/,
    ],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'pool', placement: { onLabel: 'disk=' } }] },
      SelectorSyntaxError,
      /^apps\.o\.placement\.onLabel\[0\]: invalid label selector/,
    ],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'pool', placement: { minNodes: 3, maxNodes: 2 } }] },
      ConfigError,
      /maxNodes: must be ≥ minNodes \(3\)/,
    ],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'pool', placement: { spread: { label: 'zone', maxSkew: 0 } } }] },
      ConfigError,
      /spread\.maxSkew/,
    ],
    [
      {
        nodes: [],
        apps: [{ app: 'o', mode: 'pool', placement: { preferLabel: [{ selector: 'a', weight: 500 }] } }],
      },
      ConfigError,
      /weight: must be a number in \[-100, 100\]/,
    ],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'pool', budget: { minAvailable: 1, maxUnavailable: 1 } }] },
      ConfigError,
      /not both/,
    ],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'pool', budget: { minAvailable: '150%' } }] },
      ConfigError,
      /budget\.minAvailable/,
    ],
    [
      { nodes: [], apps: [{ app: 'o', mode: 'pool', placement: { awayFromApp: ['o'] } }] },
      ConfigError,
      /cannot avoid itself/,
    ],
    [{ nodes: [], apps: [], options: { hysteresis: -1 } }, ConfigError, /placement\.hysteresis/],
  ])('refuses bad input %#', (input, type, message) => {
    expect(() => schedule(input as never)).toThrow(type);
    expect(() => schedule(input as never)).toThrow(message);
  });
});
