// A seeded simulation of the scheduler's decisions against nodes that follow them late: labels flip, nodes
// die and come back, drains start (with short deadlines) and end, leaders and pool instances adopt each
// decision after a random delay. Each step decides from the last decision, as the scheduler does, and checks
// invariants rather than outcomes:
// - decide() never throws, and an active-passive app's preferred leader is one of its placed nodes;
// - a pool app runs on at most maxNodes nodes (plus one per node being drained: a replacement starts first);
// - once a drain's deadline has passed, the drained node is in no placement;
// - two automatic migrations of one app are at least its cooldown apart (a move decided is in progress, not
//   undone on the next tick and redone later: an A→B→A flap within the cooldown breaks this);
// - one decision starts at most maxConcurrentMigrations automatic migrations.
// GC_SEED=<n> replays one seed; GC_SIM_SEEDS / GC_LONG_TESTS=1 run more.
import { describe, expect, it } from 'vitest';
import { seededRandom, simulationSeeds } from '@gc/testkit';
import { decide, type Decision } from './decide.js';
import type { DeclaredApp, NodeAdmin, PlacementState } from './records.js';
import { asState, decideInput, drainAdmin, type TestNode } from './test/decide-input.js';

const STEP_MS = 2000;
const STEPS = 120;
const COOLDOWN_MS = 10_000;
const MAX_CONCURRENT = 2;
const limits = { cooldownMs: COOLDOWN_MS, maxConcurrentMigrations: MAX_CONCURRENT };
const T0 = Date.parse('2026-12-03T00:00:00Z');

const APPS: Record<string, DeclaredApp> = {
  ssd: { mode: 'active-passive', placement: { onLabel: 'disk=ssd' } },
  zoned: { mode: 'active-passive', placement: { preferLabel: [{ selector: 'zone=a', weight: 60 }] } },
  web: { mode: 'pool', placement: { maxNodes: 2 } },
  batch: {
    mode: 'pool',
    placement: { maxNodes: 1, awayFromApp: ['web'] },
    // A window of 10 s every minute.
    migrate: { windows: [{ cron: '0 * * * *', durationMs: 10_000 }] },
  },
  fast: { mode: 'pool', placement: { onLabel: 'disk=ssd', maxNodes: 1 } },
};
const MAX_NODES: Record<string, number> = { web: 2, batch: 1, fast: 1 };
const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];

interface World {
  labels: Record<string, Record<string, string>>;
  alive: Set<string>;
  admins: Map<string, NodeAdmin>;
  /** Node → apps active there. */
  active: Map<string, Set<string>>;
  /** What the nodes will adopt and when (app → node set / leader, at time). */
  pending: Array<{ at: number; app: string; nodes: string[]; leader?: string }>;
}

function run(seed: number): void {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const w: World = {
    labels: Object.fromEntries(
      IDS.map((id) => [id, { disk: rnd() < 0.5 ? 'ssd' : 'hdd', zone: rnd() < 0.5 ? 'a' : 'b' }]),
    ),
    alive: new Set(IDS),
    admins: new Map(),
    active: new Map(IDS.map((id) => [id, new Set<string>()])),
    pending: [],
  };
  let previous: PlacementState | undefined;
  let generation = 0;
  const lastAutomatic: Record<string, number> = {};
  const trace: string[] = [];
  for (let step = 0; step < STEPS; step++) {
    const now = T0 + step * STEP_MS;
    // The world changes.
    const r = rnd();
    const node = pick(IDS);
    if (r < 0.15) {
      w.labels[node] = { ...w.labels[node], disk: w.labels[node]!.disk === 'ssd' ? 'hdd' : 'ssd' };
      trace.push(`${step}: ${node} disk=${w.labels[node].disk}`);
    } else if (r < 0.22) {
      w.labels[node] = { ...w.labels[node], zone: w.labels[node]!.zone === 'a' ? 'b' : 'a' };
      trace.push(`${step}: ${node} zone=${w.labels[node].zone}`);
    } else if (r < 0.27 && w.alive.size > 2) {
      w.alive.delete(node);
      w.active.set(node, new Set());
      trace.push(`${step}: ${node} dies`);
    } else if (r < 0.35) {
      w.alive.add(node);
      trace.push(`${step}: ${node} back`);
    } else if (r < 0.4 && !w.admins.has(node)) {
      w.admins.set(node, drainAdmin(now, 6000 + Math.floor(rnd() * 4) * STEP_MS, 'sim', 'sim'));
      trace.push(`${step}: drain ${node}`);
    } else if (r < 0.45 && w.admins.has(node)) {
      w.admins.delete(node);
      trace.push(`${step}: uncordon ${node}`);
    }
    // The nodes adopt what is due.
    for (const p of w.pending.filter((x) => x.at <= now)) {
      for (const id of IDS) {
        const here = w.active.get(id)!;
        const want = APPS[p.app]!.mode === 'active-passive' ? p.leader === id : p.nodes.includes(id);
        if (want && w.alive.has(id)) here.add(p.app);
        else here.delete(p.app);
      }
    }
    w.pending = w.pending.filter((x) => x.at > now);
    // Decide.
    const nodes: Record<string, TestNode> = {};
    for (const id of w.alive)
      nodes[id] = { labels: w.labels[id], apps: APPS, active: [...w.active.get(id)!] };
    let d: Decision;
    try {
      d = decide(decideInput(nodes, { admins: w.admins, previous, now, limits }));
    } catch (err) {
      throw new Error(`seed ${seed} step ${step}: decide threw ${String(err)}\n${trace.join('\n')}`);
    }
    const fail = (what: string) =>
      new Error(`seed ${seed} step ${step}: ${what}\n${trace.slice(-15).join('\n')}`);
    // Invariants.
    const draining = [...w.admins.values()].filter((a) => a.drain).length;
    for (const [app, p] of Object.entries(d.placements)) {
      if (p.leader !== undefined && !p.nodes.includes(p.leader))
        throw fail(`${app}: leader ${p.leader} not among ${p.nodes.join()}`);
      const max = MAX_NODES[app];
      if (max !== undefined && p.nodes.length > max + draining)
        throw fail(`${app}: on ${p.nodes.join()} (maxNodes ${max}, ${draining} draining)`);
    }
    for (const [id, drain] of Object.entries(d.draining))
      if (drain.forced)
        for (const [app, p] of Object.entries(d.placements))
          if (p.nodes.includes(id)) throw fail(`${app} still placed on ${id} after its drain was forced`);
    // The decided leader moves off a live, declaring, undrained target only as a migration that starts
    // (not by following a leader that has simply not handed over yet: that is the A→B→A flap).
    for (const [app, p] of Object.entries(d.placements)) {
      const before = previous?.placements[app]?.leader;
      if (before === undefined || p.leader === before || !w.alive.has(before) || w.admins.get(before)?.drain)
        continue;
      if (!d.started.some((s) => s.app === app))
        throw fail(`${app}: the decided leader went from ${before} to ${p.leader} with no migration started`);
    }
    const automatic = d.started.filter((s) => s.cause === 'automatic');
    if (automatic.length > MAX_CONCURRENT)
      throw fail(`${automatic.length} automatic migrations started at once`);
    for (const { app } of automatic) {
      const last = lastAutomatic[app];
      if (last !== undefined && now - last < COOLDOWN_MS)
        throw fail(`${app}: automatic migrations ${now - last} ms apart (cooldown ${COOLDOWN_MS})`);
      lastAutomatic[app] = now;
      trace.push(`${step}: ${app} migrates to ${d.placements[app]!.nodes.join()}`);
    }
    // The nodes follow the decision after 0–3 steps.
    for (const [app, p] of Object.entries(d.placements))
      w.pending.push({
        at: now + Math.floor(rnd() * 4) * STEP_MS,
        app,
        nodes: [...p.nodes],
        ...(p.leader !== undefined ? { leader: p.leader } : {}),
      });
    previous = asState(d, ++generation);
  }
}

describe('decide(), simulated against nodes that follow late', () => {
  const { seeds, replay, long } = simulationSeeds();
  // 100 seeds by default (about 10 s): a decision for five apps costs about 1 ms, 120 per seed.
  const n = long || process.env.GC_SIM_SEEDS !== undefined ? seeds : Math.min(seeds, 100);
  it(`keeps its invariants over ${replay === undefined ? n : `seed ${replay}`} seeds`, () => {
    if (replay !== undefined) return run(replay);
    for (let seed = 1; seed <= n; seed++) run(seed);
    expect(n).toBeGreaterThan(0);
  });
});
