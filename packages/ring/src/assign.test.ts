import { describe, expect, it } from 'vitest';
import { planAssignment, planMoves, quotas, type AssignMember } from './assign.js';
import { loadHasher } from './hash.js';

await loadHasher();

const nodes = (n: number, prefix = 'n'): AssignMember[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, weight: 1 }));
const none = (p: number) => new Array<string | undefined>(p).fill(undefined);
const countOf = (owners: (string | undefined)[]) => {
  const c = new Map<string, number>();
  for (const o of owners) if (o) c.set(o, (c.get(o) ?? 0) + 1);
  return c;
};

describe('quotas', () => {
  it('add up to the partition count and stay within one of the weighted share', () => {
    for (const [p, ws] of [
      [256, [1, 1, 1]],
      [256, [1, 2, 3, 0.5]],
      [7, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
      [4096, [5, 1]],
    ] as const) {
      const ms = ws.map((w, i) => ({ id: `m${i}`, weight: w }));
      const q = quotas(p, ms);
      expect([...q.values()].reduce((a, b) => a + b, 0)).toBe(p);
      const total = ws.reduce((a, b) => a + b, 0);
      for (const m of ms) expect(Math.abs(q.get(m.id)! - (p * m.weight) / total)).toBeLessThan(1);
    }
  });
});

describe('planAssignment', () => {
  it('is balanced to within one partition and deterministic', () => {
    for (const n of [1, 3, 10, 64]) {
      const a = planAssignment({ partitions: 256, members: nodes(n), previous: none(256) });
      const b = planAssignment({ partitions: 256, members: [...nodes(n)].reverse(), previous: none(256) });
      expect(a.owners).toEqual(b.owners);
      const loads = [...countOf(a.owners).values()];
      expect(loads).toHaveLength(n);
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
      expect(a.imbalance).toBeLessThanOrEqual(Math.ceil(256 / n) / (256 / n) + 1e-9);
    }
  });

  it('a join moves exactly the new member’s quota, only to it; a leave only the leaver’s partitions', () => {
    for (const n of [3, 10, 64]) {
      const before = planAssignment({ partitions: 256, members: nodes(n), previous: none(256) });
      const join = planAssignment({
        partitions: 256,
        members: [...nodes(n), { id: 'new', weight: 1 }],
        previous: before.owners,
      });
      const q = quotas(256, [...nodes(n), { id: 'new', weight: 1 }]).get('new')!;
      expect(join.moved).toBe(q);
      for (let p = 0; p < 256; p++) {
        if (join.owners[p] !== before.owners[p]) expect(join.owners[p]).toBe('new');
      }
      // ≤ 1.1 × the ideal 1/(n+1)
      expect(join.moved / 256).toBeLessThanOrEqual((1.1 * 1) / (n + 1));
      const leave = planAssignment({ partitions: 256, members: nodes(n), previous: join.owners });
      for (let p = 0; p < 256; p++) {
        if (join.owners[p] !== 'new') expect(leave.owners[p]).toBe(join.owners[p]);
      }
      expect(leave.moved).toBe(q); // exactly the leaver's partitions
    }
  });

  it('gives a weight-2 member about twice the partitions', () => {
    const ms = [
      { id: 'big', weight: 2 },
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ];
    const r = planAssignment({ partitions: 256, members: ms, previous: none(256) });
    const c = countOf(r.owners);
    expect(c.get('big')).toBe(128);
    expect(c.get('a')! + c.get('b')!).toBe(128);
  });

  it('keeps pinned partitions on their node and counts them against its share', () => {
    const pins = new Map([
      [0, 'n1'],
      [1, 'n1'],
      [2, 'gone'],
    ]);
    const r = planAssignment({ partitions: 12, members: nodes(3), previous: none(12), pins });
    expect(r.owners[0]).toBe('n1');
    expect(r.owners[1]).toBe('n1');
    expect([...countOf(r.owners).values()].sort()).toEqual([4, 4, 4]);
    // More pins than a share: the others share the rest evenly.
    const many = new Map(Array.from({ length: 8 }, (_, i) => [i, 'n0'] as [number, string]));
    const r2 = planAssignment({ partitions: 12, members: nodes(3), previous: none(12), pins: many });
    const c2 = countOf(r2.owners);
    expect(c2.get('n0')).toBe(8);
    expect(c2.get('n1')! + c2.get('n2')!).toBe(4);
    expect(Math.abs(c2.get('n1')! - c2.get('n2')!)).toBeLessThanOrEqual(1);
  });
});

describe('planMoves', () => {
  const P = 64;
  const base = planAssignment({ partitions: P, members: nodes(4), previous: none(P) }).owners;

  it('assigns orphans at once and limits moves between live members to the budget', () => {
    const members = [...nodes(4), { id: 'new', weight: 1 }];
    const r = planMoves({
      partitions: P,
      members,
      previousTarget: base,
      current: base,
      maxConcurrentMoves: 5,
      stable: true,
      initial: false,
    });
    expect(r.started).toBe(5);
    expect(r.deferred).toBe(quotas(P, members).get('new')! - 5);
    expect(r.reason).toBe('budget-reached');
    expect(r.target.filter((t, p) => t !== base[p])).toHaveLength(5);
    // The next decision with those 5 done starts the next ones, converging to the desired map.
    let target = r.target;
    let current = [...base];
    for (let round = 0; round < 10; round++) {
      current = [...target];
      const next = planMoves({
        partitions: P,
        members,
        previousTarget: target,
        current,
        maxConcurrentMoves: 5,
        stable: true,
        initial: false,
      });
      target = next.target;
      if (next.reason === 'balanced') break;
    }
    expect(target).toEqual(r.desired);
    expect(countOf(target).get('new')).toBe(quotas(P, members).get('new'));
  });

  it('does not move live partitions while unstable, but assigns the partitions of a dead member', () => {
    const dead = 'n3';
    const current = base.map((o) => (o === dead ? undefined : o));
    const r = planMoves({
      partitions: P,
      members: nodes(3),
      previousTarget: base,
      current,
      maxConcurrentMoves: 100,
      stable: false,
      initial: false,
    });
    expect(r.orphans).toBe(base.filter((o) => o === dead).length);
    for (let p = 0; p < P; p++) {
      if (base[p] !== dead) expect(r.target[p]).toBe(base[p]);
      else expect(r.target[p]).not.toBe(dead);
    }
    expect(r.reason).toBe('orphans');
  });

  it('says balanced when nothing is to do', () => {
    const r = planMoves({
      partitions: P,
      members: nodes(4),
      previousTarget: base,
      current: base,
      maxConcurrentMoves: 10,
      stable: true,
      initial: false,
    });
    expect(r.changed).toBe(false);
    expect(r.reason).toBe('balanced');
    expect(r.inProgress).toBe(0);
  });
});
