import { describe, expect, it } from 'vitest';
import { plan, planDrain } from './plan.js';
import { schedule } from './schedule.js';
import { randomApps, randomCurrent, randomNodes, rng, subsets, violation } from './test/helpers.js';
import type { PlacementApp, PlacementMap, ScheduleInput } from './types.js';

// Seeded random instances, small enough to brute-force: a failure names its seed (re-run it alone with
// SEEDS=<seed>).
const SEEDS = process.env.SEEDS
  ? process.env.SEEDS.split(',').map(Number)
  : Array.from({ length: 500 }, (_, i) => i + 1);

function instance(seed: number): ScheduleInput {
  const r = rng(seed);
  const nodes = randomNodes(r, r.int(1, 7));
  const apps = randomApps(r, r.int(1, 8), nodes.length);
  return { nodes, apps, current: r.chance(0.7) ? randomCurrent(r, apps, nodes) : {} };
}

function earlierOf(order: readonly string[], app: string, placements: PlacementMap): PlacementMap {
  const out: Record<string, { nodes: readonly string[]; leader?: string }> = {};
  for (const a of order) {
    if (a === app) break;
    if (placements[a]) out[a] = placements[a];
  }
  return out;
}

describe.each(SEEDS)('seed %i', (seed) => {
  const input = instance(seed);
  const result = schedule(input);
  const current = input.current ?? {};
  const spec = new Map(input.apps.map((a) => [a.app, a]));
  const ids = input.nodes.map((n) => n.nodeId);

  it('places every app or says why not, and every placement satisfies every hard constraint', () => {
    for (const a of input.apps) {
      const placed = result.placements[a.app];
      const unsat = result.unsatisfiable[a.app];
      expect(Boolean(placed) !== Boolean(unsat), a.app).toBe(true);
      if (!placed) {
        expect(unsat!.message).toMatch(/^no node set satisfies app/);
        continue;
      }
      const ctx = {
        nodes: input.nodes,
        apps: input.apps,
        earlier: earlierOf(result.order, a.app, result.placements),
        current,
      };
      expect(violation(a, placed.nodes, ctx), `${a.app} on ${placed.nodes.join(',')}`).toBeUndefined();
      expect([...placed.nodes].sort()).toEqual(placed.nodes);
      // As many nodes as allowed: no valid node set is larger (brute force).
      let largest = 0;
      for (const set of subsets(ids))
        if (set.length > largest && !violation(a, set, ctx)) largest = set.length;
      expect(placed.nodes.length, `${a.app}: a valid set of ${largest} nodes exists`).toBe(largest);
      if (a.mode === 'active-passive') expect(placed.nodes).toContain(placed.leader);
      else expect(placed.leader).toBeUndefined();
    }
  });

  it('declares an app unsatisfiable only when no node set satisfies it (brute force)', () => {
    for (const [app, u] of Object.entries(result.unsatisfiable)) {
      const a = spec.get(app)!;
      const targets = a.placement?.withApp ?? [];
      if (targets.some((t) => !result.placements[t])) {
        expect(u.constraint).toBe('withApp');
        continue;
      }
      const ctx = {
        nodes: input.nodes,
        apps: input.apps,
        earlier: earlierOf(result.order, app, result.placements),
        current,
      };
      for (const set of subsets(ids))
        expect(violation(a, set, ctx), `${app} could run on ${set.join(',')}: ${u.message}`).toBeDefined();
    }
  });

  it('never co-locates apps kept apart by awayFromApp, in either order', () => {
    for (const a of input.apps) {
      for (const b of a.placement?.awayFromApp ?? []) {
        const x = result.placements[a.app]?.nodes ?? [];
        const y = new Set(result.placements[b]?.nodes ?? []);
        expect(
          x.filter((n) => y.has(n)),
          `${a.app} and ${b}`,
        ).toEqual([]);
      }
    }
  });

  it('is deterministic and independent of input order', () => {
    const r = rng(seed * 7919);
    const shuffled: ScheduleInput = {
      nodes: r.shuffle(input.nodes),
      apps: r.shuffle(input.apps),
      current: Object.fromEntries(r.shuffle(Object.entries(current))),
    };
    expect(schedule(input)).toEqual(result);
    expect(JSON.stringify(schedule(shuffled))).toBe(JSON.stringify(result));
  });

  it('moves nothing when its own output is scheduled again (hysteresis)', () => {
    const again = schedule({ ...input, current: result.placements });
    expect(plan(result.placements, again).changes).toEqual([]);
    expect(again.placements).toEqual(result.placements);
  });

  it('keeps any valid placement when hysteresis outweighs every score difference', () => {
    // Another valid placement: the same hard constraints, preferences reversed and other load weights.
    const r = rng(seed * 131);
    const reversed = input.apps.map((a) => ({
      ...a,
      placement: {
        ...a.placement,
        preferLabel: a.placement?.preferLabel?.map((p) => ({ ...p, weight: -p.weight })),
      },
    }));
    const other = schedule({
      ...input,
      apps: reversed,
      options: { loadWeight: r.int(0, 40), inventoryWeight: r.int(0, 40) },
    });
    const kept = schedule({ ...input, current: other.placements, options: { hysteresis: 1e6 } });
    expect(kept.placements).toEqual(other.placements);
    expect(Object.keys(kept.unsatisfiable)).toEqual(Object.keys(other.unsatisfiable));
  });

  it('keeps any valid placement of the largest size when hysteresis outweighs every score (brute force)', () => {
    // Build a random valid placement app by app in the scheduler's order, among the largest valid sets.
    const r = rng(seed * 977);
    const chosen: Record<string, { nodes: string[]; leader?: string }> = {};
    for (const app of result.order) {
      const a = spec.get(app)!;
      const ctx = {
        nodes: input.nodes,
        apps: input.apps,
        earlier: { ...chosen },
        current: { [app]: { nodes: ids } },
      };
      let best: string[][] = [];
      for (const set of subsets(ids)) {
        if (violation(a, set, ctx)) continue;
        if (!best.length || set.length > best[0]!.length) best = [set];
        else if (set.length === best[0]!.length) best.push(set);
      }
      if (!best.length) continue; // unsatisfiable given the apps placed before it
      const set = r.pick(best);
      if (a.mode !== 'active-passive') chosen[app] = { nodes: set };
      else {
        const leaders = new Set((a.placement?.withApp ?? []).map((t) => chosen[t]?.leader));
        const follows = set.filter((n) => leaders.has(n));
        chosen[app] = { nodes: set, leader: r.pick(follows.length ? follows : set) };
      }
    }
    const kept = schedule({ ...input, current: chosen, options: { hysteresis: 1e6 } });
    expect(kept.placements).toEqual(chosen);
    expect(Object.keys(kept.unsatisfiable).sort()).toEqual(result.order.filter((a) => !chosen[a]).sort());
  });

  it('plans a drain that never breaks a disruption budget', () => {
    const r = rng(seed * 31);
    const node = r.pick(ids);
    const down = Object.fromEntries(
      input.apps.filter(() => r.chance(0.2)).map((a) => [a.app, [r.pick(ids)]]),
    );
    const d = planDrain(node, {
      ...input,
      current: result.placements,
      unavailable: down,
      maxParallel: r.int(1, 3),
    });
    const onNode = Object.keys(result.placements).filter((a) => result.placements[a]!.nodes.includes(node));
    expect([...d.steps.map((s) => s.app), ...d.blocked.map((b) => b.app)].sort()).toEqual(onNode.sort());
    expect(d.complete).toBe(d.blocked.length === 0);
    for (const s of d.steps) {
      const a = spec.get(s.app)!;
      expect(s.from).toBe(node);
      expect(s.to).not.toBe(node);
      if (s.to !== undefined) expect(d.next.placements[s.app]!.nodes).toContain(s.to);
      expect(d.next.placements[s.app]!.nodes).not.toContain(node);
      const total = a.mode === 'active-passive' ? 1 : result.placements[s.app]!.nodes.length;
      const b = a.budget;
      if (s.disruption && b?.minAvailable !== undefined) {
        const min =
          typeof b.minAvailable === 'number'
            ? b.minAvailable
            : Math.ceil((parseFloat(b.minAvailable) / 100) * total);
        expect(s.available.during, `${s.app} minAvailable`).toBeGreaterThanOrEqual(min);
      }
      if (s.disruption && b?.maxUnavailable !== undefined) {
        const max =
          typeof b.maxUnavailable === 'number'
            ? b.maxUnavailable
            : Math.ceil((parseFloat(b.maxUnavailable) / 100) * total);
        expect(total - s.available.during, `${s.app} maxUnavailable`).toBeLessThanOrEqual(max);
      }
      expect(s.available.during).toBeGreaterThanOrEqual(s.available.before - s.disruption);
    }
    for (const bl of d.blocked) {
      expect(d.next.placements[bl.app]).toEqual(result.placements[bl.app]);
      expect(bl.message).toContain(bl.app);
    }
    expect(d.waves.flat()).toEqual(d.steps.map((s) => s.app));
  });
});

it('schedules 1,000 apps on 100 nodes well within a heartbeat', () => {
  const r = rng(99);
  const nodes = randomNodes(r, 100).map((n) => ({ ...n, capacity: undefined }));
  const apps = randomApps(r, 1000, 100);
  const t = performance.now();
  const result = schedule({ nodes, apps });
  const ms = performance.now() - t;
  expect(Object.keys(result.placements).length + Object.keys(result.unsatisfiable).length).toBe(1000);
  expect(ms).toBeLessThan(2000); // typically ~100 ms on a busy 2-core machine
});

it('keeps hysteresis at scale: 300 apps on 40 nodes rescheduled move nothing, and a new node draws only a bounded share', () => {
  const r = rng(4242);
  const nodes = randomNodes(r, 40).map((n) => ({ ...n, capacity: undefined, cordoned: false }));
  const apps: PlacementApp[] = randomApps(r, 300, 40).map((a) => ({
    ...a,
    placement: { ...a.placement, withApp: undefined },
  }));
  const first = schedule({ nodes, apps });
  const again = schedule({ nodes, apps, current: first.placements });
  expect(plan(first.placements, again).changes).toEqual([]);
  const grown = schedule({
    nodes: [...nodes, { nodeId: 'n-new', labels: { zone: 'a', disk: 'ssd' } }],
    apps,
    current: first.placements,
  });
  const changes = plan(first.placements, grown).changes;
  // Only moves onto the new node (or spread re-levelling that it allows); never a churn of the whole cluster.
  expect(changes.length).toBeGreaterThan(0);
  expect(changes.length).toBeLessThan(apps.length / 2);
});
