// `pnpm bench placement`: the scheduler's decision time for 1,000 apps on 100 simulated nodes (every app
// with constraints drawn from a fixed seed, reasons recorded), against a naive first-fit scheduler written
// below and measured in the same run (same parsed selectors, no scoring, no spread, no reasons). Also:
// re-scheduling its own output (hysteresis: must move nothing), a node joining (how many apps move) and
// load balance (max ÷ mean active instances per node) of both. Rounds are interleaved A B A B after a
// warm-up; times are medians. `ratio` is gc's decision time ÷ first-fit's: the price of scoring, spread,
// anti-affinity, hysteresis and recorded reasons (the bar is on gc's absolute time and on zero moves when
// re-scheduling). Prints one JSON line last; exits 0 even when a bar is missed.
import { parseSelector, plan, schedule } from '../src/index.js';
import type { PlacementApp, PlacementMap, PlacementNode } from '../src/index.js';
import { rng } from '../src/test/helpers.js';

const APPS = Number(process.env.BENCH_APPS ?? 1000);
const NODES = Number(process.env.BENCH_NODES ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const BAR_MS = 250; // a decision well under the default membership heartbeat (1 s)

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const r = rng(20261202);
const zones = ['eu-1', 'eu-2', 'eu-3'];
const nodes: PlacementNode[] = Array.from({ length: NODES }, (_, i) => ({
  nodeId: `node-${String(i).padStart(3, '0')}`,
  labels: {
    zone: zones[i % 3]!,
    disk: r.chance(0.6) ? 'ssd' : 'hdd',
    arch: r.chance(0.8) ? 'x86' : 'arm',
    ...(r.chance(0.1) ? { gpu: 'yes' } : {}),
  },
  weight: r.pick([1, 1, 1, 2]),
  inventory: { cpus: r.pick([4, 8, 16]), memoryBytes: 2 ** 34, diskFreeBytes: 2 ** 38, load1: r.next() * 4 },
}));
const names = Array.from({ length: APPS }, (_, i) => `app-${String(i).padStart(4, '0')}`);
const apps: PlacementApp[] = names.map((app, i) => {
  const mode = r.chance(0.6) ? 'active-passive' : r.chance(0.75) ? 'pool' : 'ring';
  const placement: NonNullable<PlacementApp['placement']> = {
    maxNodes: mode === 'active-passive' ? r.int(2, 3) : r.int(3, 10),
  };
  if (r.chance(0.4))
    placement.onLabel = r.pick(['disk=ssd', 'arch!=arm', 'zone in (eu-1,eu-2)', 'disk=ssd, arch=x86']);
  if (r.chance(0.1)) placement.avoidLabel = 'gpu';
  if (r.chance(0.3))
    placement.preferLabel = [{ selector: r.pick(['disk=ssd', 'zone=eu-1', 'gpu']), weight: r.int(-50, 100) }];
  if (r.chance(0.3)) placement.spread = { label: 'zone', maxSkew: 1 };
  if (i > 0 && r.chance(0.05)) placement.withApp = [names[r.int(0, i - 1)]!];
  if (r.chance(0.05)) placement.awayFromApp = [r.pick(names)].filter((x) => x !== app);
  return { app, mode, placement };
});

/** The baseline: first fit in node order, hard label constraints only. */
function firstFit(ns: readonly PlacementNode[], as: readonly PlacementApp[]): PlacementMap {
  const cache = new Map<string, ReturnType<typeof parseSelector>>();
  const sel = (s: string) => cache.get(s) ?? cache.set(s, parseSelector(s)).get(s)!;
  const out: Record<string, { nodes: string[]; leader?: string }> = {};
  for (const a of as) {
    const p = a.placement ?? {};
    const on = (p.onLabel === undefined ? [] : typeof p.onLabel === 'string' ? [p.onLabel] : p.onLabel).map(
      sel,
    );
    const avoid = (
      p.avoidLabel === undefined ? [] : typeof p.avoidLabel === 'string' ? [p.avoidLabel] : p.avoidLabel
    ).map(sel);
    const chosen: string[] = [];
    for (const n of ns) {
      if (chosen.length >= (p.maxNodes ?? Infinity)) break;
      const l = n.labels ?? {};
      if (on.every((s) => s.matches(l)) && !avoid.some((s) => s.matches(l))) chosen.push(n.nodeId);
    }
    out[a.app] = a.mode === 'active-passive' ? { nodes: chosen, leader: chosen[0]! } : { nodes: chosen };
  }
  return out;
}

function balance(p: PlacementMap): number {
  const active = new Map<string, number>(nodes.map((n) => [n.nodeId, 0]));
  for (const a of apps) {
    const x = p[a.app];
    if (!x) continue;
    for (const n of a.mode === 'active-passive' ? [x.leader!] : x.nodes) active.set(n, active.get(n)! + 1);
  }
  const v = [...active.values()];
  return Math.max(...v) / (v.reduce((s, x) => s + x, 0) / v.length);
}

const time = (fn: () => unknown) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

// Warm-up.
for (let i = 0; i < 3; i++) {
  schedule({ nodes, apps });
  firstFit(nodes, apps);
}
const gcMs: number[] = [];
const baseMs: number[] = [];
const quietMs: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const a = time(() => schedule({ nodes, apps }));
  const b = time(() => firstFit(nodes, apps));
  quietMs.push(time(() => schedule({ nodes, apps, options: { explain: false } })));
  gcMs.push(a);
  baseMs.push(b);
  ratios.push(a / b);
}
const first = schedule({ nodes, apps });
const resched: number[] = [];
let again = first;
for (let i = 0; i < ROUNDS; i++)
  resched.push(time(() => (again = schedule({ nodes, apps, current: first.placements }))));
const movedOnReschedule = plan(first.placements, again).changes.length;
const joined = schedule({
  nodes: [...nodes, { nodeId: 'node-new', labels: { zone: 'eu-1', disk: 'ssd', arch: 'x86' } }],
  apps,
  current: first.placements,
});
const movedOnJoin = plan(first.placements, joined).changes.length;
const placed = Object.keys(first.placements).length;
const decisionMs = median(gcMs);
const pass = decisionMs <= BAR_MS && movedOnReschedule === 0;
console.log(
  JSON.stringify({
    bench: 'placement',
    apps: APPS,
    nodes: NODES,
    rounds: ROUNDS,
    placed,
    unsatisfiable: APPS - placed,
    decisionMs: +decisionMs.toFixed(1),
    decisionNoReasonsMs: +median(quietMs).toFixed(1),
    rescheduleMs: +median(resched).toFixed(1),
    firstFitMs: +median(baseMs).toFixed(2),
    ratio: +median(ratios).toFixed(1),
    movedOnReschedule,
    movedOnJoin,
    activeLoadMaxMean: +balance(first.placements).toFixed(2),
    firstFitActiveLoadMaxMean: +balance(firstFit(nodes, apps)).toFixed(2),
    bar: { decisionMs: BAR_MS, movedOnReschedule: 0 },
    pass,
  }),
);
