import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.js';
import { exposedGc, startIdleGc, v8Gc, type GcFunction } from './idle-gc.js';

/** Utilization readings: each call with `prev` returns the next scripted value. */
function scripted(values: number[]) {
  let i = 0;
  return (prev?: unknown) =>
    ({ idle: 0, active: 0, utilization: prev === undefined ? 0 : (values[i++] ?? 0) }) as never;
}

describe('idle GC', () => {
  it('asks for a full collection only after an idle interval, at most once per minIntervalMs', async () => {
    const clock = new FakeClock();
    const calls: unknown[] = [];
    const gc: GcFunction = (o) => void calls.push(o);
    // Busy, idle, idle, idle, busy, idle.
    const idle = startIdleGc({
      clock,
      gc,
      checkEveryMs: 1000,
      minIntervalMs: 2500,
      utilization: scripted([0.5, 0.01, 0.01, 0.01, 0.9, 0.02]),
    });
    await clock.advance(1000); // busy
    expect(calls).toEqual([]);
    await clock.advance(1000); // idle: collects
    expect(calls).toEqual([{ type: 'major', execution: 'async' }]);
    await clock.advance(1000); // idle, 1 s after the last: too soon
    await clock.advance(1000); // idle, 2 s after: too soon
    expect(calls).toHaveLength(1);
    await clock.advance(1000); // busy, 3 s after: left alone
    expect(calls).toHaveLength(1);
    await clock.advance(1000); // idle, 4 s after: collects
    expect(calls).toHaveLength(2);
    expect(idle.collections()).toBe(2);
    idle.stop();
    await clock.advance(10_000);
    expect(calls).toHaveLength(2);
  });

  it("reaches V8's collector without --expose-gc, and a full collection frees unreachable memory", async () => {
    const gc = v8Gc();
    expect(typeof gc).toBe('function');
    // From now on every thread of the process finds it (capture workers follow the process's choice).
    expect(typeof exposedGc()).toBe('function');
    let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    const ref = new WeakRef(garbage);
    garbage = undefined;
    await gc!({ type: 'major', execution: 'async' });
    expect(ref.deref()).toBeUndefined();
  });
});
