import { describe, expect, it } from 'vitest';
import { FakeClock, realClock, scaledClock } from './clock.js';
import { isGcError } from './errors.js';

describe('FakeClock', () => {
  it('fires timers in time order only when advanced', async () => {
    const c = new FakeClock();
    const fired: string[] = [];
    c.setTimeout(() => fired.push('b'), 200);
    c.setTimeout(() => fired.push('a'), 100);
    c.setTimeout(() => fired.push('c'), 200);
    await c.advance(99);
    expect(fired).toEqual([]);
    await c.advance(1);
    expect(fired).toEqual(['a']);
    await c.advance(100);
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(c.now()).toBe(200);
  });

  it('runs timers scheduled by timers within the same advance, at their own time', async () => {
    const c = new FakeClock();
    const at: number[] = [];
    const loop = async () => {
      for (let i = 0; i < 3; i++) {
        await c.sleep(10);
        at.push(c.now());
      }
    };
    const done = loop();
    await c.advance(100);
    await done;
    expect(at).toEqual([10, 20, 30]);
  });

  it('clears timers and aborts sleeps', async () => {
    const c = new FakeClock();
    let fired = false;
    const h = c.setTimeout(() => (fired = true), 5);
    c.clearTimeout(h);
    const ac = new AbortController();
    const p = c.sleep(1000, ac.signal);
    ac.abort();
    await expect(p).rejects.toSatisfy((e) => isGcError(e, 'GC_ABORTED'));
    await c.advance(10);
    expect(fired).toBe(false);
    expect(c.pending()).toBe(0);
  });

  it('keeps wall time apart from monotonic time', async () => {
    const c = new FakeClock(0, 1_000_000);
    await c.advance(5);
    expect(c.wallNow()).toBe(1_000_005);
  });

  it('next() jumps to the next timer', async () => {
    const c = new FakeClock();
    c.setTimeout(() => undefined, 42);
    expect(await c.next()).toBe(true);
    expect(c.now()).toBe(42);
    expect(await c.next()).toBe(false);
  });
});

describe('scaledClock', () => {
  it('runs faster or slower than its base', async () => {
    const base = new FakeClock();
    const fast = scaledClock(base, 2);
    const slow = scaledClock(base, 0.5);
    await base.advance(100);
    expect(fast.now()).toBe(200);
    expect(slow.now()).toBe(50);
    let fired = false;
    fast.setTimeout(() => (fired = true), 100); // 50 ms of base time
    await base.advance(50);
    expect(fired).toBe(true);
  });

  it('refuses a non-positive rate', () => {
    expect(() => scaledClock(realClock, 0)).toThrow(/rate/);
  });
});

describe('realClock', () => {
  it('is monotonic and sleeps', async () => {
    const a = realClock.now();
    await realClock.sleep(5);
    expect(realClock.now()).toBeGreaterThanOrEqual(a + 4);
  });
});
