import { describe, expect, it } from 'vitest';
import { decide, sameDecision } from './decide.js';
import type { DeclaredApp, NodeAdmin } from './records.js';
import { asState, decideInput as input, drainAdmin } from './test/decide-input.js';

const ap = (placement: DeclaredApp['placement'] = {}, budget?: DeclaredApp['budget']): DeclaredApp => ({
  mode: 'active-passive',
  placement,
  ...(budget ? { budget } : {}),
});
const pool = (placement: DeclaredApp['placement'] = {}, budget?: DeclaredApp['budget']): DeclaredApp => ({
  mode: 'pool',
  placement,
  ...(budget ? { budget } : {}),
});

describe('decide', () => {
  it('places an app only on the nodes that declare it, and says so for the others', () => {
    const d = decide(
      input({ a: { apps: { orders: ap() } }, b: { apps: {} }, c: { apps: { orders: ap() } } }),
    );
    expect(d.placements.orders!.nodes).toEqual(['a', 'c']);
    expect(d.reasons.orders!.b).toMatchObject({
      status: 'excluded',
      detail: 'the app is not declared on this node',
    });
  });

  it("keeps an active-passive app's leader where it really leads (after a failover), not where it was placed", () => {
    const nodes = { a: { apps: { orders: ap() } }, b: { apps: { orders: ap() } } };
    const first = decide(input(nodes));
    const preferred = first.placements.orders!.leader!;
    const other = preferred === 'a' ? 'b' : 'a';
    // A failover moved the lead to the other node: the next decision follows it instead of switching back.
    const next = decide(
      input(
        { ...nodes, [other]: { apps: { orders: ap() }, active: ['orders'] } },
        { previous: asState(first) },
      ),
    );
    expect(next.placements.orders!.leader).toBe(other);
  });

  it('reports an unsatisfiable constraint with the nodes that fail it', () => {
    const d = decide(
      input({ a: { labels: { disk: 'hdd' }, apps: { orders: ap({ onLabel: 'disk=ssd' }) } } }),
    );
    expect(d.placements.orders).toBeUndefined();
    expect(d.unsatisfiable.orders!.message).toMatch(/no node set satisfies app "orders".*onLabel "disk=ssd"/);
  });

  it('flags apps declared with different specs on different nodes (the first node by id wins)', () => {
    const d = decide(
      input({ a: { apps: { web: pool({ maxNodes: 1 }) } }, b: { apps: { web: pool({ maxNodes: 2 }) } } }),
    );
    expect(d.conflicts).toEqual(['web']);
    expect(d.placements.web!.nodes).toHaveLength(1);
  });

  it("one app's unreadable spec (a newer gc's, say) is reported and does not stop the others", () => {
    const d = decide(
      input({
        a: {
          apps: {
            odd: pool({ onLabel: 'zone in (a' }),
            future: pool({ nearApp: ['x'] } as DeclaredApp['placement']),
            web: pool(),
          },
        },
      }),
    );
    expect(d.placements.web!.nodes).toEqual(['a']);
    expect(d.unsatisfiable.odd).toMatchObject({ constraint: 'spec' });
    expect(d.unsatisfiable.odd!.message).toMatch(/declared by a\) cannot be used: .*onLabel/);
    expect(d.unsatisfiable.future!.message).toMatch(/nearApp/);
  });

  it('cordoned nodes take no new apps but keep theirs', () => {
    const nodes = { a: { apps: { web: pool() } }, b: { apps: { web: pool() } } };
    const first = decide(input(nodes));
    const cordon: NodeAdmin = { cordoned: true, reason: 'r', by: 'op', at: 0 };
    const kept = decide(input(nodes, { previous: asState(first), admins: { b: cordon } }));
    expect(kept.placements.web!.nodes).toEqual(['a', 'b']);
    const fresh = decide(input({ ...nodes, c: { apps: { api: pool() } } }, { admins: { c: cordon } }));
    expect(fresh.unsatisfiable.api!.message).toMatch(/cordon/);
  });

  it('drains a node as far as budgets allow, and forces the rest after the deadline', () => {
    const nodes = {
      a: {
        apps: { web: pool(), pinned: pool({ onNodes: ['a', 'b'] }, { minAvailable: 2 }) },
        active: ['web', 'pinned'],
      },
      b: {
        apps: { web: pool(), pinned: pool({ onNodes: ['a', 'b'] }, { minAvailable: 2 }) },
        active: ['web', 'pinned'],
      },
      c: { apps: { web: pool() }, active: ['web'] },
    };
    const first = decide(input(nodes));
    expect(first.placements.pinned!.nodes).toEqual(['a', 'b']);
    const drain = drainAdmin(1000, 5000, 'upgrade');
    const during = decide(input(nodes, { previous: asState(first), admins: { a: drain }, now: 2000 }));
    expect(during.placements.web!.nodes).not.toContain('a');
    expect(during.placements.pinned!.nodes).toEqual(['a', 'b']);
    expect(during.draining.a).toMatchObject({ remaining: ['pinned'], forced: false });
    expect(during.draining.a!.blocked.join()).toMatch(/pinned.*minAvailable 2/);
    // The deadline runs from when the scheduler first saw the drain (2000, its clock), not from the
    // record's own time (1000, the clock of the machine the command ran on).
    expect(during.draining.a).toMatchObject({ since: 2000, requested: 1000 });
    const early = decide(input(nodes, { previous: asState(during, 2), admins: { a: drain }, now: 6500 }));
    expect(early.draining.a).toMatchObject({ forced: false, since: 2000 });
    const after = decide(input(nodes, { previous: asState(early, 3), admins: { a: drain }, now: 7000 }));
    expect(after.placements.pinned?.nodes ?? []).not.toContain('a');
    expect(after.draining.a).toEqual({
      remaining: [],
      blocked: [],
      forced: true,
      since: 2000,
      requested: 1000,
    });
    // A new drain of the node (another record) starts its own deadline.
    const again = { ...drain, drain: { ...drain.drain!, since: 9000 } };
    const renewed = decide(input(nodes, { previous: asState(after, 4), admins: { a: again }, now: 9500 }));
    expect(renewed.draining.a).toMatchObject({ forced: false, since: 9500, requested: 9000 });
  });

  it('a drained pool instance stays until its replacement is active', () => {
    const nodes = {
      a: { apps: { web: pool({ maxNodes: 2 }, { minAvailable: 2 }) }, active: ['web'] },
      b: { apps: { web: pool({ maxNodes: 2 }, { minAvailable: 2 }) }, active: ['web'] },
      c: { apps: { web: pool({ maxNodes: 2 }, { minAvailable: 2 }) } },
    };
    const first = decide(input(nodes));
    expect(first.placements.web!.nodes).toEqual(['a', 'b']);
    const drain = drainAdmin(0, 60_000, 'r');
    const starting = decide(input(nodes, { previous: asState(first), admins: { a: drain } }));
    expect(starting.placements.web!.nodes).toEqual(['a', 'b', 'c']);
    expect(starting.draining.a!.remaining).toEqual(['web']);
    const replaced = decide(
      input(
        { ...nodes, c: { ...nodes.c, active: ['web'] } },
        { previous: asState(starting, 2), admins: { a: drain } },
      ),
    );
    expect(replaced.placements.web!.nodes).toEqual(['b', 'c']);
    expect(replaced.draining.a!.remaining).toEqual([]);
  });

  it('a first decision keeps an active-passive leader and pool instances where they already run', () => {
    // Whichever node the schedule would prefer, the one that leads stays the preferred leader: no switchover.
    for (const leader of ['a', 'b', 'c']) {
      const nodes: Parameters<typeof input>[0] = {};
      for (const id of ['a', 'b', 'c'])
        nodes[id] = { apps: { db: ap() }, ...(id === leader ? { active: ['db'] } : {}) };
      expect(decide(input(nodes)).placements.db!.leader).toBe(leader);
    }
    const d = decide(
      input({
        a: { apps: { web: pool({ maxNodes: 1 }) } },
        b: { apps: { web: pool({ maxNodes: 1 }) } },
        c: { apps: { web: pool({ maxNodes: 1 }) }, active: ['web'] },
      }),
    );
    expect(d.placements.web!.nodes).toEqual(['c']);
    expect(d.started).toEqual([]);
  });

  it('records which node leads each active-passive app when it decides', () => {
    const d = decide(input({ a: { apps: { db: ap() }, active: ['db'] }, b: { apps: { db: ap() } } }));
    expect(d.leaders).toEqual({ db: 'a' });
    expect(d.placements.db!.leader).toBe('a');
  });

  it("sameDecision ignores scores and times, not placements, drains or a node's verdict", () => {
    const nodes = { a: { apps: { web: pool() } }, b: { apps: { web: pool() } } };
    const d = decide(input(nodes));
    expect(sameDecision(asState(d), decide(input(nodes)))).toBe(true);
    expect(sameDecision(undefined, d)).toBe(false);
    expect(sameDecision(asState(d), decide(input({ a: nodes.a })))).toBe(false);
    // b declares the app after the decision: same placement, but b's verdict is now the label, not
    // "not declared" (gc explain must not keep the stale one).
    const ssd = pool({ onLabel: 'disk=ssd' });
    const before = decide(
      input({ a: { labels: { disk: 'ssd' }, apps: { web: ssd } }, b: { labels: { disk: 'hdd' }, apps: {} } }),
    );
    const after = decide(
      input({
        a: { labels: { disk: 'ssd' }, apps: { web: ssd } },
        b: { labels: { disk: 'hdd' }, apps: { web: ssd } },
      }),
    );
    expect(after.placements).toEqual(before.placements);
    expect(before.reasons.web!.b).toMatchObject({ constraint: 'onNodes' });
    expect(after.reasons.web!.b).toMatchObject({ constraint: 'onLabel' });
    expect(sameDecision(asState(before), after)).toBe(false);
  });

  it('is deterministic: the same inputs in another order give the same decision', () => {
    const nodes: Parameters<typeof input>[0] = {};
    for (const id of ['n3', 'n1', 'n4', 'n2'])
      nodes[id] = {
        labels: { zone: id < 'n3' ? 'a' : 'b' },
        apps: { web: pool({ spread: { label: 'zone' } }), db: ap() },
      };
    const x = decide(input(nodes));
    const reversed = Object.fromEntries(Object.entries(nodes).reverse());
    expect(decide(input(reversed))).toEqual(x);
  });
});
