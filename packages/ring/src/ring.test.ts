import { waitFor } from '@gc/testkit';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RingErrorCode } from './errors.js';
import { openRingObserver } from './observer.js';
import { rejection, useRingServer, type Members } from './test/helpers.js';
import type { RingSnapshot, RingWatcher } from './types.js';

const rs = useRingServer('rt');
let m: Members;
let seq = 0;
const fresh = () => (m = rs.members(`app${++seq}`));

/** Snapshots of `w` read one at a time (`next`), or skipped up to the first that matches (`until`). */
function reader(w: RingWatcher) {
  const it = w[Symbol.asyncIterator]();
  const next = async (): Promise<RingSnapshot | undefined> =>
    (await it.next()).value as RingSnapshot | undefined;
  const until = async (pred: (s: RingSnapshot) => boolean, timeoutMs = 10_000): Promise<RingSnapshot> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no matching snapshot within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      for (;;) {
        const s = await Promise.race([next(), timeout]);
        if (!s) throw new Error('the watcher ended before a matching snapshot');
        if (pred(s)) return s;
      }
    } finally {
      clearTimeout(timer);
    }
  };
  return { next, until };
}

describe('ring membership and ownership (real nats-server)', () => {
  it('spreads partitions over members, one owner each, balanced; a join moves only the new quota', async () => {
    fresh();
    const owned: Array<{ node: string; p: number; epoch: number }> = [];
    const hooks = (node: string) => ({
      partitions: 64,
      onOwn: (p: number, { epoch }: { epoch: number }) => void owned.push({ node, p, epoch }),
    });
    for (const id of ['a', 'b', 'c']) await m.start(id, hooks(id));
    const before = await m.converged();
    const counts = (owners: Map<number, string>) => {
      const c = new Map<string, number>();
      for (const o of owners.values()) c.set(o, (c.get(o) ?? 0) + 1);
      return c;
    };
    expect([...counts(before).values()].sort()).toEqual([21, 21, 22]);
    const st = m.rings.get('a')!.status();
    expect(st).toMatchObject({ joined: true, owning: 0, releasing: 0, moving: 0, members: 3 });
    expect(st.serving).toBe(m.rings.get('a')!.partitions().length);
    expect(st.leaseRemainingMs).toBeGreaterThan(0);
    expect([...m.rings.values()].filter((r) => r.status().coordinator)).toHaveLength(1);
    const a = m.rings.get('a')!;
    // ownerOf agrees with owns everywhere.
    for (let i = 0; i < 200; i++) {
      const key = `k${i}`;
      const o = a.ownerOf(key)!;
      expect(m.rings.get(o)!.owns(key)).toBe(true);
    }
    const releasedBefore = m.events.filter((e) => e.type === 'released').length;
    await m.start('d', hooks('d'));
    const after = await m.converged();
    let moved = 0;
    for (const [p, o] of after) {
      if (o !== before.get(p)) {
        moved++;
        expect(o).toBe('d'); // nothing moves between old members
      }
    }
    expect(moved).toBe(16);
    expect(counts(after).get('d')).toBe(16);
    // Epochs of every partition increased with each owner.
    const byP = new Map<number, number[]>();
    for (const x of owned) byP.set(x.p, [...(byP.get(x.p) ?? []), x.epoch]);
    for (const es of byP.values())
      for (let i = 1; i < es.length; i++) expect(es[i]).toBeGreaterThan(es[i - 1]!);
    // Exactly the moved partitions were released (handed off), each once.
    expect(m.events.filter((e) => e.type === 'released').length - releasedBefore).toBe(16);
  });

  it('hands off on a polite leave: onRelease on the old owner before onOwn on the new one', async () => {
    fresh();
    const log: string[] = [];
    const hooks = (node: string) => ({
      partitions: 16,
      onOwn: (p: number) => void log.push(`own ${p} ${node}`),
      onRelease: async (p: number, { to }: { to: string | undefined }) => {
        await new Promise((r) => setTimeout(r, 5));
        log.push(`release ${p} ${node} -> ${to}`);
      },
    });
    await m.start('a', hooks('a'));
    await m.start('b', hooks('b'));
    const before = await m.converged();
    log.length = 0;
    await m.stop('a');
    const after = await m.converged();
    expect([...after.values()].every((o) => o === 'b')).toBe(true);
    for (const [p, o] of before) {
      if (o !== 'a') continue;
      const rel = log.indexOf(`release ${p} a -> b`);
      const own = log.indexOf(`own ${p} b`);
      expect(rel).toBeGreaterThanOrEqual(0);
      expect(own).toBeGreaterThan(rel);
    }
  });

  it('reassigns the partitions of a crashed member after its TTL', async () => {
    fresh();
    await m.start('a', { partitions: 32 });
    await m.start('b', { partitions: 32 });
    await m.start('c', { partitions: 32 });
    await m.converged();
    const crashedAt = performance.now();
    await m.crash('c');
    const after = await m.converged();
    const took = performance.now() - crashedAt;
    expect(new Set(after.values())).toEqual(new Set(['a', 'b']));
    expect(took).toBeLessThan(900 * 3);
    expect(m.events.some((e) => e.type === 'member-expired' && e.nodeId === 'c')).toBe(true);
  });

  it('gives a weight-2 member twice the partitions', async () => {
    fresh();
    await m.start('big', { partitions: 60, weight: 2 });
    await m.start('s1', { partitions: 60 });
    await m.start('s2', { partitions: 60 });
    const owners = await m.converged();
    const c = new Map<string, number>();
    for (const o of owners.values()) c.set(o, (c.get(o) ?? 0) + 1);
    expect(c.get('big')).toBe(30);
    expect(c.get('s1')).toBe(15);
  });

  it('pins move a partition and keep it; bad pins are typed errors', async () => {
    fresh();
    const a = await m.start('a', { partitions: 8 });
    await m.start('b', { partitions: 8 });
    const owners = await m.converged();
    const p = [...owners].find(([, o]) => o === 'a')![0];
    await a.pin(p, 'b');
    expect(a.pins()).toEqual({ [p]: 'b' });
    await waitFor(() => m.rings.get('b')!.ownsPartition(p), { timeoutMs: 10_000, message: 'pinned move' });
    await m.converged(15_000, false);
    expect(m.rings.get('a')!.ownsPartition(p)).toBe(false);
    const e1 = await rejection(a.pin(p, 'nobody'));
    expect(e1.code).toBe(RingErrorCode.UnknownNode);
    expect(e1.message).toMatch(/members: a, b/);
    const e2 = await rejection(a.pin(99, 'b'));
    expect(e2.code).toBe(RingErrorCode.UnknownPartition);
    const e3 = await rejection(() => a.ownsPartition(1.5));
    expect(e3.code).toBe(RingErrorCode.UnknownPartition);
    await a.unpin(p);
    expect(a.pins()).toEqual({});
  });

  it('watch() of a member and of an observer resolves once live: the current snapshot, then a change made right after', async () => {
    fresh();
    const a = await m.start('a', { partitions: 8 });
    await m.converged();
    const obs = await openRingObserver(await m.conn('obs'), { platform: m.platform, app: m.app });
    const pending = a.watch();
    expect(pending).toBeInstanceOf(Promise);
    const mw = await pending;
    const w = reader(mw);
    const ow = reader(await obs.watch());
    await a.pin(3, 'a'); // the change, right after both watchers are live
    for (const r of [w, ow]) {
      const first = await r.next();
      expect(first).toMatchObject({ app: m.app, pins: {} });
      expect(first!.owners.every((o) => o === 'a')).toBe(true);
      await r.until((s) => s.pins[3] === 'a');
    }
    mw.stop(); // ends after the snapshots still queued
    for await (const s of mw) expect(s.app).toBe(m.app);
    // Closed: resolves (does not reject) to an ended watcher holding the last snapshot.
    await obs.close();
    const ended: RingSnapshot[] = [];
    for await (const s of await obs.watch()) ended.push(s);
    expect(ended).toHaveLength(1);
    expect(ended[0]!.pins).toEqual({ 3: 'a' });
    await m.stop('a');
    const endedA: RingSnapshot[] = [];
    for await (const s of await a.watch()) endedA.push(s);
    expect(endedA).toHaveLength(1);
  });

  it('refuses a partition count change and keys of the wrong type', async () => {
    fresh();
    const a = await m.start('a', { partitions: 32 });
    const e = await rejection(m.start('b', { partitions: 64 }));
    expect(e.code).toBe(RingErrorCode.PartitionCountMismatch);
    expect(e.message).toMatch(/runs with 32 partitions; this member asked for 64/);
    expect(e.message).toMatch(/partitions: 32/);
    // Unset: the stored count is used.
    const b = await m.start('c');
    expect(b.partitionCount).toBe(32);
    for (const bad of [42, null, undefined, { id: 1 }, Symbol('x')]) {
      const err = await rejection(() => a.ownerOf(bad as never));
      expect(err.code).toBe(RingErrorCode.InvalidKey);
    }
    expect((await rejection(() => a.owns(7 as never))).message).toMatch(/pass String\(key\)/);
  });
});

describe('ring observability (real nats-server)', () => {
  it('reports stuck moves, budget and stability decisions, hand-off durations and counts as metrics and events', async () => {
    fresh();
    const registry = new Registry();
    let block = true;
    const opts = {
      partitions: 16,
      registry,
      stuckMoveMs: 300,
      maxConcurrentMoves: 2,
      settleMs: 150,
      onRelease: async () => {
        while (block) await new Promise((r) => setTimeout(r, 10));
      },
    };
    await m.start('a', opts);
    await m.converged();
    await m.start('b', opts);
    // Budget 2: two moves start, the rest wait for them; they are stuck while onRelease blocks.
    await waitFor(() => m.events.some((e) => e.type === 'move-stuck'), {
      timeoutMs: 10_000,
      message: 'a stuck move',
    });
    const reasons = new Set(
      m.events.filter((e) => e.type === 'rebalance').map((e) => (e as { reason: string }).reason),
    );
    expect(reasons).toContain('initial');
    expect(reasons).toContain('not-stable');
    expect(reasons).toContain('budget-reached');
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string) => metrics.find((x) => x.name === name)?.values.map((v) => v.value) ?? [];
    expect(Math.max(...value('gc_ring_stuck_moves'))).toBeGreaterThanOrEqual(1);
    expect(Math.max(...value('gc_ring_moves_in_progress'))).toBeGreaterThanOrEqual(2);
    block = false;
    await m.converged();
    await waitFor(
      async () => {
        const ms = await registry.getMetricsAsJSON();
        const stuck = ms.find((x) => x.name === 'gc_ring_stuck_moves')?.values.map((v) => v.value) ?? [1];
        return Math.max(...stuck) === 0;
      },
      { timeoutMs: 5000, message: 'no stuck moves left' },
    );
    // The coordinator refreshes its gauges on its next pass (record changes are batched for 20 ms).
    const text = await waitFor(
      async () => {
        const t = await registry.metrics();
        return /gc_ring_node_partitions\{[^}]*member="b"[^}]*\} 8/.test(t) ? t : undefined;
      },
      { timeoutMs: 5000, message: 'coordinator counts' },
    );
    expect(text).toMatch(/gc_ring_handoff_seconds_count\{[^}]*phase="release"[^}]*\} [1-9]/);
    expect(text).toMatch(/gc_ring_handoff_seconds_count\{[^}]*phase="move"[^}]*\} [1-9]/);
    expect(text).toMatch(/gc_ring_imbalance_ratio\{[^}]*\} 1/);
    expect(text).toMatch(/gc_ring_rebalance_total\{[^}]*reason="budget-reached"[^}]*\} [1-9]/);
    expect(m.events.some((e) => e.type === 'move-done')).toBe(true);
  });
});
