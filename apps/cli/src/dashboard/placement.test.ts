import type { ServerResponse } from 'node:http';
import { runInNewContext } from 'node:vm';
import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import {
  PlacementNotFoundError,
  type AdminClient,
  type NodeAdmin,
  type PlacementState,
  type PlatformStatus,
} from '@gc/platform';
import { dashboardHtml } from './page.js';
import {
  createDashboard,
  describeReason,
  type ClusterSnapshot,
  type Dashboard,
  type PlacementSource,
} from './server.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const MIN = 60_000;

const score = (total: number) => ({ affinity: 10, load: -1.5, inventory: 0, sticky: total - 8.5, total });

const state: PlacementState = {
  scheduler: 'a',
  epoch: 3,
  at: NOW - 1000,
  generation: 7,
  placements: { orders: { nodes: ['a', 'b'], leader: 'a' }, cache: { nodes: ['b', 'c'] } },
  reasons: {
    orders: {
      a: { status: 'selected', role: 'leader', score: score(12) },
      b: { status: 'selected', role: 'standby', score: score(9) },
      c: { status: 'excluded', constraint: 'onLabel', detail: 'labels do not match "disk=ssd"' },
    },
  },
  unsatisfiable: {
    billing: { constraint: 'minNodes', message: 'no node set satisfies app "billing": 1 of 3 nodes' },
  },
  nodes: ['a', 'b', 'c'],
  draining: {
    c: { remaining: ['cache'], blocked: ['cache: budget minAvailable 2 holds it'], forced: false },
  },
  deferred: { cache: 'cooldown: 4m left' },
  refused: { orders: 'b: busy <exporting>' },
};

const admins = new Map<string, NodeAdmin>([
  [
    'c',
    {
      cordoned: true,
      drain: { since: NOW - 10 * MIN, deadlineMs: 40 * MIN, reason: 'kernel upgrade' },
      reason: 'kernel upgrade',
      by: 'gc-cli (ops)',
      at: NOW - 10 * MIN,
    },
  ],
  ['d', { cordoned: true, reason: 'bad disk', by: 'gc-cli (ops)', at: NOW - MIN }],
]);

const node = (id: string, labels: Record<string, string>): PlatformStatus =>
  ({
    platform: 'p',
    nodeId: id,
    labels,
    server: { version: '2.11.0', connected: true },
    health: { state: 'healthy', ready: true, checks: [] },
    apps: [
      {
        name: 'orders',
        mode: 'active-passive',
        role: id === 'a' ? 'active' : 'passive',
        leader: 'a',
        epoch: 2,
      },
    ],
  }) as unknown as PlatformStatus;

const admin = {
  nodes: () =>
    Promise.resolve([node('a', { zone: 'eu-1', disk: 'ssd' }), node('b', { zone: 'eu-2' }), node('c', {})]),
} as unknown as AdminClient;

const clock = {
  now: () => 0,
  wallNow: () => NOW,
  setTimeout: () => 0,
  clearTimeout: () => undefined,
  sleep: () => Promise.resolve(),
} as never;

/** A fake placement bucket: only what the dashboard reads. */
const fakeBucket = (over: Partial<PlacementSource> = {}): PlacementSource => ({
  state: () => Promise.resolve(state),
  admins: () => Promise.resolve(admins),
  ...over,
});

/** Runs `use` with node a's dashboard over the fake admin and clock, reading placement through `placement`. */
async function withDashboard<T>(
  placement: (() => Promise<PlacementSource | undefined>) | undefined,
  use: (dashboard: Dashboard) => Promise<T>,
): Promise<T> {
  const dashboard = createDashboard({
    platform: 'p',
    nodeId: 'a',
    admin,
    clock,
    ...(placement ? { placement } : {}),
  });
  try {
    return await use(dashboard);
  } finally {
    dashboard.close();
  }
}

/** One snapshot of the dashboard. */
const cluster = (placement?: () => Promise<PlacementSource | undefined>): Promise<ClusterSnapshot> =>
  withDashboard(placement, get);

async function get(dashboard: Dashboard): Promise<ClusterSnapshot> {
  let body = '';
  const res = { writeHead: () => res, end: (b: string) => void (body = b) } as unknown as ServerResponse;
  await dashboard.routes['/api/cluster']!({} as never, res);
  return JSON.parse(body) as ClusterSnapshot;
}

describe('the dashboard snapshot: placement', () => {
  it('carries the decision, the reasons as one line per node, cordons and drains', async () => {
    const s = await cluster(() => Promise.resolve(fakeBucket()));
    expect(s.placementError).toBeUndefined();
    expect(s.placement).toEqual({
      scheduler: 'a',
      epoch: 3,
      generation: 7,
      at: NOW - 1000,
      apps: {
        billing: {
          placed: [],
          unsatisfiable: {
            constraint: 'minNodes',
            message: 'no node set satisfies app "billing": 1 of 3 nodes',
          },
          reasons: {},
        },
        cache: { placed: ['b', 'c'], deferred: 'cooldown: 4m left', reasons: {} },
        orders: {
          placed: ['a', 'b'],
          leader: 'a',
          refused: 'b: busy <exporting>',
          reasons: {
            a: 'selected as leader — score 12 (affinity 10, load -1.5, inventory 0, sticky 3.5)',
            b: 'selected as standby — score 9 (affinity 10, load -1.5, inventory 0, sticky 0.5)',
            c: 'excluded — onLabel: labels do not match "disk=ssd"',
          },
        },
      },
      nodes: {
        c: {
          cordoned: true,
          cordonReason: 'kernel upgrade',
          by: 'gc-cli (ops)',
          drain: {
            since: NOW - 10 * MIN,
            deadlineMs: 40 * MIN,
            reason: 'kernel upgrade',
            remaining: ['cache'],
            blocked: ['cache: budget minAvailable 2 holds it'],
            forced: false,
            seen: true,
          },
        },
        d: { cordoned: true, cordonReason: 'bad disk', by: 'gc-cli (ops)' },
      },
    });
    // Node labels come with the nodes' status.
    expect(s.nodes.find((n) => n.id === 'a')?.labels).toEqual({ zone: 'eu-1', disk: 'ssd' });
  });

  it('has no placement section, and no error, when the platform has no placement bucket', async () => {
    for (const open of [
      () => Promise.resolve(undefined),
      () => Promise.reject(new PlacementNotFoundError('p', 'p_placement')),
      // openPlacementBucket binds without a round trip: a missing bucket shows on the first read.
      () =>
        Promise.resolve(
          fakeBucket({
            state: () =>
              Promise.reject(
                new JetStreamApiError({ err_code: 10059, code: 404, description: 'stream not found' }),
              ),
          }),
        ),
    ]) {
      const s = await cluster(open);
      expect(s).not.toHaveProperty('placement');
      expect(s).not.toHaveProperty('placementError');
      expect(s.nodes).toHaveLength(3);
    }
    // No option at all: no section either.
    expect(await cluster()).not.toHaveProperty('placement');
  });

  it('reports a failed read in the snapshot instead of failing it, and recovers on the next one', async () => {
    let fail = true;
    let opened = 0;
    const placement = () => {
      opened++;
      return Promise.resolve(
        fakeBucket({
          admins: () => (fail ? Promise.reject(new Error('timed out')) : Promise.resolve(admins)),
        }),
      );
    };
    await withDashboard(placement, async (dashboard) => {
      const bad = await get(dashboard);
      expect(bad.placementError).toBe('cannot read the placement bucket: timed out');
      expect(bad).not.toHaveProperty('placement');
      expect(bad.apps.map((a) => a.name)).toEqual(['orders']);
      fail = false;
      const good = await get(dashboard);
      expect(good).not.toHaveProperty('placementError');
      expect(good.placement?.nodes.d?.cordoned).toBe(true);
      expect(opened).toBe(1); // the opened bucket is kept across snapshots
    });
  });

  it('reports a bucket that cannot be opened, and opens it again next time', async () => {
    let opened = 0;
    const placement = () =>
      ++opened === 1 ? Promise.reject(new Error('no responders')) : Promise.resolve(fakeBucket());
    await withDashboard(placement, async (dashboard) => {
      expect((await get(dashboard)).placementError).toBe('cannot open the placement bucket: no responders');
      expect((await get(dashboard)).placement?.generation).toBe(7);
    });
  });

  it('describes a reason in one line', () => {
    expect(describeReason({ status: 'not-selected', detail: 'maxNodes 2 reached', score: score(4) })).toBe(
      'not selected — maxNodes 2 reached; score 4 (affinity 10, load -1.5, inventory 0, sticky -4.5)',
    );
    expect(describeReason({ status: 'excluded' })).toBe('excluded — no reason given');
    expect(describeReason({ status: 'selected', role: 'member' })).toBe('selected as member');
  });
});

/** The page's script run against a fake DOM: render() fills the elements' innerHTML as in a browser. */
function page() {
  const script = /<script>([\s\S]*)<\/script>/.exec(dashboardHtml)?.[1];
  if (!script) throw new Error('no script in the page');
  const elements = new Map<
    string,
    { innerHTML: string; textContent: string; hidden: boolean; className: string }
  >();
  const document = {
    getElementById: (id: string) => {
      if (!elements.has(id))
        elements.set(id, { innerHTML: '', textContent: '', hidden: false, className: '' });
      return elements.get(id);
    },
  };
  class EventSource {}
  // The page defines render() as a global function of its script: the context object gets it.
  const ctx: { document: unknown; EventSource: unknown; render?: (s: ClusterSnapshot) => void } = {
    document,
    EventSource,
  };
  runInNewContext(script, ctx);
  return {
    render: (s: ClusterSnapshot) => ctx.render!(s),
    el: (id: string) => document.getElementById(id)!,
  };
}

describe('the dashboard page: placement', () => {
  const snapshot = async (over: Partial<ClusterSnapshot> = {}): Promise<ClusterSnapshot> => ({
    ...(await cluster(() => Promise.resolve(fakeBucket()))),
    ...over,
  });

  it('shows node labels, cordoned and draining badges with what is left of a drain', async () => {
    const p = page();
    const s = await snapshot();
    s.nodes[1]!.labels = { zone: '<eu-2>' };
    p.render(s);
    const html = p.el('nodes').innerHTML;
    expect(html).toContain('<span class="badge" data-label="zone">zone=eu-1</span>');
    expect(html).toContain('data-label="disk">disk=ssd</span>');
    expect(html).toContain('zone=&lt;eu-2&gt;');
    expect(html).not.toContain('<eu-2>');
    const row = (id: string) => html.split('<tr ').find((r) => r.startsWith(`data-node-row="${id}"`)) ?? '';
    expect(row('a')).not.toContain('data-hold');
    expect(row('c')).toContain(
      '<span class="badge draining" data-hold="draining" title="drained by gc-cli (ops): kernel upgrade">draining</span>',
    );
    expect(row('c')).toContain('1 app(s) left: cache');
    expect(row('c')).toContain('blocked: cache: budget minAvailable 2 holds it');
    expect(row('c')).toContain('<b class="drain-left">30m 0s left</b>');
    // d does not answer but stays cordoned: it is still listed.
    expect(row('d')).toContain(
      '<span class="badge cordoned" data-hold="cordoned" title="cordoned by gc-cli (ops): bad disk">cordoned</span>',
    );
    expect(p.el('placement-error').hidden).toBe(true);
    expect(p.el('summary').textContent).toContain('placement decision 7 by a');

    const forced = structuredClone(s);
    forced.placement!.nodes.c!.drain!.forced = true;
    p.render(forced);
    expect(p.el('nodes').innerHTML).toContain('<b class="drain-left">forced</b>');
    const late = structuredClone(s);
    late.generatedAt = NOW + 31 * MIN;
    p.render(late);
    expect(p.el('nodes').innerHTML).toContain('<b class="drain-left">deadline passed</b>');
  });

  it("shows each app's placed nodes, the preferred leader, warnings, and the reasons on hover", async () => {
    const p = page();
    p.render(await snapshot());
    const html = p.el('apps').innerHTML;
    const card = (app: string) => {
      const from = html.indexOf(`<div class="app" data-app="${app}">`);
      expect(from, `card of ${app}`).toBeGreaterThanOrEqual(0);
      const to = html.indexOf('<div class="app" data-app=', from + 1);
      return html.slice(from, to < 0 ? undefined : to);
    };
    const orders = card('orders');
    expect(orders).toContain('preferred leader <b>a</b>');
    expect(orders).toContain(
      '<span class="badge placed pref-leader" data-placed-node="a" title="selected as leader — score 12 (affinity 10, load -1.5, inventory 0, sticky 3.5)">a ★</span>',
    );
    expect(orders).toContain('<span class="badge placed" data-placed-node="b" title="selected as standby');
    expect(orders).toContain(
      '<span class="badge unplaced" data-placed-node="c" title="excluded — onLabel: labels do not match &quot;disk=ssd&quot;">c</span>',
    );
    expect(orders).toContain(
      '<div class="kv warn" data-placement-warn="refused">migration refused: b: busy &lt;exporting&gt;</div>',
    );
    // Apps no live node reports still get a card, with why they cannot be placed.
    const billing = card('billing');
    expect(billing).toContain('<b class="warn">not placed</b>');
    expect(billing).toContain(
      '<div class="kv warn" data-placement-warn="unsatisfiable">cannot be placed (minNodes): no node set satisfies app &quot;billing&quot;: 1 of 3 nodes</div>',
    );
    expect(card('cache')).toContain(
      '<div class="kv warn" data-placement-warn="deferred">migration deferred: cooldown: 4m left</div>',
    );
  });

  it('shows a read error, and nothing of placement without the section', async () => {
    const p = page();
    const s = await snapshot();
    delete s.placement;
    s.placementError = 'cannot read the placement bucket: <timed out>';
    p.render(s);
    expect(p.el('placement-error').hidden).toBe(false);
    expect(p.el('placement-error').textContent).toBe(
      'placement: cannot read the placement bucket: <timed out>',
    );
    expect(p.el('apps').innerHTML).not.toContain('placement');
    expect(p.el('nodes').innerHTML).not.toContain('data-hold');
    expect(p.el('nodes').innerHTML).not.toContain('data-node-row="d"');
  });
});
