import { xxh32 } from './hash.js';
import { RebalanceReason, type RebalanceReasonValue } from './types.js';

/** A member as the assignment sees it. */
export interface AssignMember {
  id: string;
  /** Relative capacity (> 0). */
  weight: number;
}

/** Input of {@link planAssignment}. */
export interface AssignInput {
  partitions: number;
  /** Members that may receive partitions. */
  members: readonly AssignMember[];
  /** The assignment before the change (node id per partition, undefined for none). */
  previous: readonly (string | undefined)[];
  /** Pinned partitions: partition → node (ignored while the node is not a member). */
  pins?: ReadonlyMap<number, string>;
}

/** Result of {@link planAssignment}. */
export interface AssignResult {
  /** Node per partition (undefined only when there are no members). */
  owners: (string | undefined)[];
  /** Partitions per member in `owners`. */
  loads: Map<string, number>;
  /** Partitions whose owner changed from a node that was given in `previous`. */
  moved: number;
  /** Max over members of load / (partitions × weight / total weight): 1 is perfect. */
  imbalance: number;
}

/** Rendezvous scores per node: XXH32(node id, seed = partition). Cached: node ids repeat. */
const scoreCache = new Map<string, Uint32Array>();

function scores(node: string, partitions: number): Uint32Array {
  const key = `${partitions}\u0000${node}`;
  let s = scoreCache.get(key);
  if (!s) {
    s = new Uint32Array(partitions);
    for (let p = 0; p < partitions; p++) s[p] = xxh32(node, p);
    if (scoreCache.size > 4096) scoreCache.clear();
    scoreCache.set(key, s);
  }
  return s;
}

/**
 * Partition counts per member: the weighted fair share `partitions × weight / total` rounded by the
 * largest-remainder method (ties by a hash of the node id), so they add up to `partitions` exactly and no
 * member is more than one partition off its share.
 */
export function quotas(partitions: number, members: readonly AssignMember[]): Map<string, number> {
  const total = members.reduce((a, m) => a + m.weight, 0);
  const q = new Map<string, number>();
  if (members.length === 0 || !(total > 0)) return q;
  const rest: Array<{ id: string; frac: number; tie: number }> = [];
  let given = 0;
  for (const m of members) {
    const ideal = (partitions * m.weight) / total;
    const base = Math.floor(ideal + 1e-9);
    q.set(m.id, base);
    given += base;
    rest.push({ id: m.id, frac: ideal - base, tie: xxh32(m.id, 0x5eed) });
  }
  rest.sort((a, b) => b.frac - a.frac || b.tie - a.tie || (a.id < b.id ? -1 : 1));
  for (let i = 0; given < partitions; i = (i + 1) % rest.length, given++) {
    const id = rest[i]!.id;
    q.set(id, q.get(id)! + 1);
  }
  return q;
}

/**
 * The balanced assignment that moves the fewest partitions from `previous`, deterministically (every
 * coordinator computes the same result from the same input):
 *
 * 1. quotas: each member's weighted fair share, rounded so they add up (see {@link quotas}); pinned
 *    partitions go to their node and count against its quota;
 * 2. keep: every member keeps the partitions it had, up to its quota — when it has more, it keeps the
 *    ones with the highest rendezvous score `XXH32(node, seed = partition)` and gives up the rest;
 * 3. fill: each partition without an owner (its node left, it was given up, or it is new), in partition
 *    order, goes to the member with room that scores it highest.
 *
 * A join therefore moves exactly the new member's quota (taken from members above their new quota), a
 * leave exactly the leaving member's partitions, and loads differ from the fair share by less than one
 * partition.
 */
export function planAssignment(input: AssignInput): AssignResult {
  const { partitions, members } = input;
  const owners: (string | undefined)[] = new Array<string | undefined>(partitions).fill(undefined);
  const loads = new Map<string, number>();
  if (members.length === 0) return { owners, loads, moved: 0, imbalance: 0 };
  const byId = new Map(members.map((m) => [m.id, m]));
  const q = quotas(partitions, members);
  const totalWeight = members.reduce((a, m) => a + m.weight, 0);
  for (const m of members) loads.set(m.id, 0);

  // 1. Pins.
  const pinned = new Uint8Array(partitions);
  const pinnedCount = new Map<string, number>();
  for (const [p, node] of input.pins ?? []) {
    if (p < 0 || p >= partitions || !byId.has(node)) continue;
    owners[p] = node;
    pinned[p] = 1;
    pinnedCount.set(node, (pinnedCount.get(node) ?? 0) + 1);
  }
  let unpinned = partitions;
  for (const n of pinnedCount.values()) unpinned -= n;
  // Capacity for unpinned partitions: quota minus pins, adjusted so the capacities add up exactly.
  const cap = new Map<string, number>();
  let capSum = 0;
  for (const m of members) {
    const c = Math.max(0, q.get(m.id)! - (pinnedCount.get(m.id) ?? 0));
    cap.set(m.id, c);
    capSum += c;
  }
  const loadRatio = (id: string) => (cap.get(id)! + (pinnedCount.get(id) ?? 0)) / byId.get(id)!.weight;
  while (capSum > unpinned) {
    let worst: string | undefined;
    for (const m of members) {
      if (cap.get(m.id)! > 0 && (!worst || loadRatio(m.id) > loadRatio(worst))) worst = m.id;
    }
    cap.set(worst!, cap.get(worst!)! - 1);
    capSum--;
  }
  while (capSum < unpinned) {
    let best: string | undefined;
    for (const m of members) if (!best || loadRatio(m.id) < loadRatio(best)) best = m.id;
    cap.set(best!, cap.get(best!)! + 1);
    capSum++;
  }

  // 2. Keep what members had, up to capacity, best-scored first.
  const had = new Map<string, number[]>();
  for (let p = 0; p < partitions; p++) {
    if (pinned[p]) continue;
    const prev = input.previous[p];
    if (prev === undefined || !byId.has(prev)) continue;
    let list = had.get(prev);
    if (!list) had.set(prev, (list = []));
    list.push(p);
  }
  const room = new Map<string, number>();
  for (const m of members) {
    const list = had.get(m.id) ?? [];
    const c = cap.get(m.id)!;
    if (list.length > c) {
      const s = scores(m.id, partitions);
      list.sort((a, b) => s[b]! - s[a]! || a - b);
      list.length = c;
    }
    for (const p of list) owners[p] = m.id;
    room.set(m.id, c - list.length);
  }

  // 3. Fill the rest, partition by partition, to the best-scoring member with room.
  const open = members.filter((m) => room.get(m.id)! > 0).map((m) => m.id);
  const openScores = open.map((id) => scores(id, partitions));
  for (let p = 0; p < partitions; p++) {
    if (owners[p] !== undefined) continue;
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < open.length; i++) {
      if (room.get(open[i]!)! <= 0) continue;
      const sc = openScores[i]![p]!;
      if (sc > bestScore || (sc === bestScore && open[i]! < open[best]!)) {
        best = i;
        bestScore = sc;
      }
    }
    const id = open[best]!;
    owners[p] = id;
    room.set(id, room.get(id)! - 1);
  }

  let moved = 0;
  for (let p = 0; p < partitions; p++) {
    const o = owners[p]!;
    loads.set(o, loads.get(o)! + 1);
    const prev = input.previous[p];
    if (prev !== undefined && prev !== o) moved++;
  }
  let imbalance = 0;
  for (const m of members) {
    const fair = (partitions * m.weight) / totalWeight;
    imbalance = Math.max(imbalance, loads.get(m.id)! / fair);
  }
  return { owners, loads, moved, imbalance };
}

/** Input of {@link planMoves}: what the coordinator knows. */
export interface MovesInput {
  partitions: number;
  /** Members that may receive partitions (active, live). */
  members: readonly AssignMember[];
  pins?: ReadonlyMap<number, string>;
  /** The last map's target per partition (undefined: none yet). */
  previousTarget: readonly (string | undefined)[];
  /**
   * The live owner per partition (`owning` or `owned` by a live member instance), undefined when the
   * partition has none (never owned, released, or its owner is gone).
   */
  current: readonly (string | undefined)[];
  /** Most moves between live owners in progress at once. */
  maxConcurrentMoves: number;
  /** False while membership changed less than `settleMs` ago: live partitions are not moved yet. */
  stable: boolean;
  /** True when no map was written before. */
  initial: boolean;
}

/** Output of {@link planMoves}. */
export interface MovesPlan {
  /** The map to publish: target per partition. */
  target: (string | undefined)[];
  /** The balanced assignment the ring converges to. */
  desired: (string | undefined)[];
  /** True when `target` differs from `previousTarget`. */
  changed: boolean;
  reason: RebalanceReasonValue;
  /** Moves between live owners started now. */
  started: number;
  /** Moves between live owners left for later (budget or stability). */
  deferred: number;
  /** Partitions without a live owner whose target was (re)set. */
  orphans: number;
  /** Partitions whose target is not their live owner, after this plan. */
  inProgress: number;
  imbalance: number;
}

/**
 * One coordinator decision: the balanced target ({@link planAssignment}, sticky to the previous target), of
 * which partitions without a live owner are assigned at once, and moves between live members are started
 * only while the membership is stable and fewer than `maxConcurrentMoves` are in progress.
 */
export function planMoves(input: MovesInput): MovesPlan {
  const { partitions } = input;
  const previous = input.previousTarget.map((t, p) => t ?? input.current[p]);
  const desired = planAssignment({
    partitions,
    members: input.members,
    previous,
    ...(input.pins ? { pins: input.pins } : {}),
  });
  const target: (string | undefined)[] = new Array<string | undefined>(partitions);
  let inProgress = 0;
  for (let p = 0; p < partitions; p++) {
    const t = input.previousTarget[p];
    if (t !== undefined && input.current[p] !== undefined && t !== input.current[p]) inProgress++;
  }
  let started = 0;
  let deferred = 0;
  let orphans = 0;
  let budgetHit = false;
  let unstableHit = false;
  for (let p = 0; p < partitions; p++) {
    const cur = input.current[p];
    const want = desired.owners[p];
    const prevT = input.previousTarget[p];
    if (cur === undefined) {
      target[p] = want;
      if (want !== prevT) orphans++;
    } else if (want === cur || want === undefined) {
      target[p] = cur;
    } else if (prevT === want) {
      target[p] = want; // already moving there
    } else if (!input.stable) {
      target[p] = prevT !== undefined && prevT !== cur ? prevT : cur;
      deferred++;
      unstableHit = true;
    } else if (inProgress < input.maxConcurrentMoves) {
      target[p] = want;
      started++;
      inProgress++;
    } else {
      target[p] = prevT !== undefined && prevT !== cur ? prevT : cur;
      deferred++;
      budgetHit = true;
    }
  }
  let changed = false;
  for (let p = 0; p < partitions && !changed; p++) changed = target[p] !== input.previousTarget[p];
  let after = 0;
  for (let p = 0; p < partitions; p++) if (target[p] !== input.current[p]) after++;
  const reason: RebalanceReasonValue = input.initial
    ? RebalanceReason.Initial
    : budgetHit
      ? RebalanceReason.BudgetReached
      : unstableHit
        ? RebalanceReason.NotStable
        : started > 0
          ? RebalanceReason.Rebalance
          : orphans > 0
            ? RebalanceReason.Orphans
            : RebalanceReason.Balanced;
  return {
    target,
    desired: desired.owners,
    changed,
    reason,
    started,
    deferred,
    orphans,
    inProgress: after,
    imbalance: desired.imbalance,
  };
}
