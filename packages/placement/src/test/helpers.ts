import { parseSelector } from '../selector.js';
import type { PlacementApp, PlacementMap, PlacementNode } from '../types.js';

/** Seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const chance = (p: number) => next() < p;
  const shuffle = <T>(xs: readonly T[]): T[] => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };
  return { next, int, pick, chance, shuffle };
}
export type Rng = ReturnType<typeof rng>;

const ZONES = ['a', 'b', 'c'];

/** Random nodes with zone/disk/gpu labels, some cordoned, some with a capacity. */
export function randomNodes(r: Rng, count: number): PlacementNode[] {
  return Array.from({ length: count }, (_, i) => {
    const labels: Record<string, string> = {};
    if (r.chance(0.9)) labels.zone = r.pick(ZONES);
    labels.disk = r.pick(['ssd', 'hdd']);
    if (r.chance(0.3)) labels.gpu = 'yes';
    if (r.chance(0.5)) labels.arch = r.pick(['x86', 'arm']);
    const n: PlacementNode = { nodeId: `n${i}`, labels };
    if (r.chance(0.3)) n.weight = r.pick([0.5, 2, 3]);
    if (r.chance(0.15)) n.cordoned = true;
    if (r.chance(0.2)) n.capacity = r.int(1, 4);
    if (r.chance(0.3))
      n.inventory = { cpus: r.int(1, 16), memoryBytes: 2 ** 33, diskFreeBytes: 2 ** 35, load1: r.next() * 8 };
    return n;
  });
}

const SELECTORS = [
  'zone=a',
  'zone=b',
  'disk=ssd',
  'disk!=ssd',
  'zone in (a,b)',
  'zone notin (c)',
  'gpu',
  '!gpu',
  'arch=arm',
  'arch!=arm',
  'zone=a, disk=ssd',
];

/** Random apps with random constraints; `withApp` points to earlier apps (and rarely forms a cycle). */
export function randomApps(r: Rng, count: number, nodeCount: number): PlacementApp[] {
  const names = Array.from({ length: count }, (_, i) => `app-${i}`);
  return names.map((app, i) => {
    const placement: NonNullable<PlacementApp['placement']> = {};
    if (r.chance(0.35))
      placement.onLabel = r.chance(0.7) ? r.pick(SELECTORS) : [r.pick(SELECTORS), r.pick(SELECTORS)];
    if (r.chance(0.2)) placement.avoidLabel = r.pick(SELECTORS);
    if (r.chance(0.4)) placement.preferLabel = [{ selector: r.pick(SELECTORS), weight: r.int(-100, 100) }];
    if (r.chance(0.1))
      placement.onNodes = Array.from({ length: r.int(1, 3) }, () => `n${r.int(0, nodeCount)}`);
    if (i > 0 && r.chance(0.15)) placement.withApp = [names[r.int(0, i - 1)]!];
    if (i > 0 && r.chance(0.02))
      placement.withApp = [names[r.int(i, count - 1)]!, ...(placement.withApp ?? [])].filter(
        (x) => x !== app,
      );
    if (r.chance(0.25)) placement.awayFromApp = [r.pick(names.filter((x) => x !== app).concat(['app-none']))];
    if (r.chance(0.3)) placement.spread = { label: 'zone', maxSkew: r.int(1, 2) };
    if (r.chance(0.3)) placement.minNodes = r.int(1, 3);
    if (r.chance(0.4)) placement.maxNodes = r.int(placement.minNodes ?? 1, 4);
    const a: PlacementApp = { app, mode: r.pick(['active-passive', 'pool', 'ring'] as const), placement };
    if (r.chance(0.4))
      a.budget = r.chance(0.5)
        ? { minAvailable: r.pick([1, 2, '50%'] as const) }
        : { maxUnavailable: r.pick([0, 1, '50%'] as const) };
    return a;
  });
}

/** A random "current" placement: some apps somewhere (not necessarily valid). */
export function randomCurrent(
  r: Rng,
  apps: readonly PlacementApp[],
  nodes: readonly PlacementNode[],
): Record<string, { nodes: string[]; leader?: string }> {
  const out: Record<string, { nodes: string[]; leader?: string }> = {};
  for (const a of apps) {
    if (!r.chance(0.6)) continue;
    const ns = r.shuffle(nodes.map((n) => n.nodeId)).slice(0, r.int(1, Math.max(1, nodes.length)));
    ns.sort();
    out[a.app] = a.mode === 'active-passive' ? { nodes: ns, leader: r.pick(ns) } : { nodes: ns };
  }
  return out;
}

/**
 * An independent statement of the hard constraints: is `set` a valid placement of `app`, given the
 * placements of the apps scheduled before it (`earlier`) and the current placement? Returns the broken
 * rule, or undefined. Written separately from the scheduler on purpose.
 */
export function violation(
  app: PlacementApp,
  set: readonly string[],
  ctx: {
    nodes: readonly PlacementNode[];
    apps: readonly PlacementApp[];
    earlier: PlacementMap;
    current: PlacementMap;
    draining?: string;
  },
): string | undefined {
  const p = app.placement ?? {};
  const list = (v: string | readonly string[] | undefined) =>
    v === undefined ? [] : typeof v === 'string' ? [v] : v;
  const byId = new Map(ctx.nodes.map((n) => [n.nodeId, n]));
  const specOf = new Map(ctx.apps.map((a) => [a.app, a]));
  const perNode = (id: string): string | undefined => {
    const n = byId.get(id);
    if (!n) return 'unknown node';
    const labels = n.labels ?? {};
    if (p.onNodes && !p.onNodes.includes(id)) return 'onNodes';
    if (!list(p.onLabel).every((s) => parseSelector(s).matches(labels))) return 'onLabel';
    if (list(p.avoidLabel).some((s) => parseSelector(s).matches(labels))) return 'avoidLabel';
    if (ctx.draining === id) return 'draining';
    if (n.cordoned && !(ctx.current[app.app]?.nodes ?? []).includes(id)) return 'cordoned';
    if (p.spread && labels[p.spread.label] === undefined) return 'spread label';
    for (const t of p.withApp ?? []) if (!(ctx.earlier[t]?.nodes ?? []).includes(id)) return `withApp ${t}`;
    let used = 0;
    for (const [other, pl] of Object.entries(ctx.earlier)) {
      if (!pl.nodes.includes(id)) continue;
      used++;
      const o = specOf.get(other);
      if ((p.awayFromApp ?? []).includes(other) || (o?.placement?.awayFromApp ?? []).includes(app.app))
        return `awayFromApp ${other}`;
    }
    if (n.capacity !== undefined && used >= n.capacity) return 'capacity';
    return undefined;
  };
  if (set.length < (p.minNodes ?? 1)) return 'minNodes';
  if (set.length > (p.maxNodes ?? Infinity)) return 'maxNodes';
  if (new Set(set).size !== set.length) return 'duplicate node';
  for (const id of set) {
    const v = perNode(id);
    if (v) return `${id}: ${v}`;
  }
  if (p.spread) {
    const counts = new Map<string, number>();
    for (const n of ctx.nodes) if (perNode(n.nodeId) === undefined) counts.set(n.labels![p.spread.label]!, 0);
    for (const id of set) {
      const v = byId.get(id)!.labels![p.spread.label]!;
      counts.set(v, counts.get(v)! + 1);
    }
    const cs = [...counts.values()];
    if (Math.max(...cs) - Math.min(...cs) > (p.spread.maxSkew ?? 1)) return 'spread skew';
  }
  return undefined;
}

/** Every subset of `ids` (for brute force on small instances). */
export function* subsets(ids: readonly string[]): Generator<string[]> {
  for (let m = 1; m < 1 << ids.length; m++) yield ids.filter((_, i) => m & (1 << i));
}
