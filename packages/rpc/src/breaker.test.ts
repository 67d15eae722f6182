import { FakeClock } from '@gc/core';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './breaker.js';
import type { CircuitStateName } from './types.js';

// The breaker on a FakeClock: time moves only through clock.advance, so no test sleeps.

class Counted extends Error {}
class Refused extends Error {}

function setup(consecutiveFailures = 3, halfOpenAfterMs = 1000) {
  const clock = new FakeClock();
  const changes: CircuitStateName[] = [];
  const breaker = new CircuitBreaker({
    consecutiveFailures,
    halfOpenAfterMs,
    clock,
    isFailure: (err) => err instanceof Counted,
    onStateChange: (s) => changes.push(s),
  });
  let runs = 0;
  const call = (outcome: 'ok' | 'counted' | 'other' = 'ok') =>
    breaker.execute(
      async () => {
        runs++;
        if (outcome === 'counted') throw new Counted('target failed');
        if (outcome === 'other') throw new TypeError('caller error');
        return 'ok';
      },
      () => new Refused('circuit open'),
    );
  /** What `call` settled with: its value, or the class name of its error. */
  const outcome = (p: Promise<string>) =>
    p.then(
      (v) => v,
      (e: Error) => e.constructor.name,
    );
  const open = async () => {
    for (let i = 0; i < consecutiveFailures; i++) expect(await outcome(call('counted'))).toBe('Counted');
    expect(breaker.state).toBe('open');
  };
  return { clock, breaker, changes, call, outcome, open, runs: () => runs };
}

/** A promise with its resolve and reject. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('CircuitBreaker (FakeClock)', () => {
  it('opens after N consecutive counted failures and then refuses calls without running them', async () => {
    const t = setup(3);
    expect(t.breaker.state).toBe('closed');
    expect(await t.outcome(t.call('counted'))).toBe('Counted');
    expect(await t.outcome(t.call('counted'))).toBe('Counted');
    expect(t.breaker.state).toBe('closed');
    expect(await t.outcome(t.call('counted'))).toBe('Counted');
    expect(t.breaker.state).toBe('open');
    expect(t.changes).toEqual(['open']);
    expect(await t.outcome(t.call())).toBe('Refused');
    expect(t.runs()).toBe(3);
  });

  it('a success resets the count; errors that do not count leave it as it is', async () => {
    const t = setup(3);
    await t.outcome(t.call('counted'));
    await t.outcome(t.call('counted'));
    expect(await t.call()).toBe('ok');
    await t.outcome(t.call('counted'));
    await t.outcome(t.call('counted'));
    expect(t.breaker.state).toBe('closed'); // 2 in a row since the success
    // Not counted: neither a failure nor a success.
    for (let i = 0; i < 5; i++) expect(await t.outcome(t.call('other'))).toBe('TypeError');
    expect(t.breaker.state).toBe('closed');
    await t.outcome(t.call('counted'));
    expect(t.breaker.state).toBe('open');
  });

  it('half-opens exactly when halfOpenAfterMs of clock time passed, and a trial success closes it', async () => {
    const t = setup(3, 1000);
    await t.open();
    await t.clock.advance(999);
    expect(t.breaker.state).toBe('open');
    expect(await t.outcome(t.call())).toBe('Refused');
    await t.clock.advance(1);
    expect(t.breaker.state).toBe('half-open');
    expect(await t.call()).toBe('ok');
    expect(t.breaker.state).toBe('closed');
    expect(t.changes).toEqual(['open', 'half-open', 'closed']);
    // Closed again with a fresh count: it takes N failures to open it.
    await t.outcome(t.call('counted'));
    await t.outcome(t.call('counted'));
    expect(t.breaker.state).toBe('closed');
  });

  it('a trial failure opens it again for another halfOpenAfterMs', async () => {
    const t = setup(3, 1000);
    await t.open();
    await t.clock.advance(1000);
    const runs = t.runs();
    expect(await t.outcome(t.call('counted'))).toBe('Counted');
    expect(t.runs()).toBe(runs + 1);
    expect(t.breaker.state).toBe('open');
    expect(await t.outcome(t.call())).toBe('Refused');
    await t.clock.advance(999);
    expect(await t.outcome(t.call())).toBe('Refused');
    await t.clock.advance(1);
    expect(await t.call()).toBe('ok');
    expect(t.changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('a trial that fails with an error that does not count closes it (the target answered)', async () => {
    const t = setup(3, 1000);
    await t.open();
    await t.clock.advance(1000);
    expect(await t.outcome(t.call('other'))).toBe('TypeError');
    expect(t.breaker.state).toBe('closed');
  });

  it('lets exactly one trial call through while half-open; the others are refused until it settles', async () => {
    const t = setup(2, 1000);
    await t.open();
    await t.clock.advance(1000);
    const gate = deferred<string>();
    let started = 0;
    const slow = () =>
      t.breaker.execute(
        () => {
          started++;
          return gate.promise;
        },
        () => new Refused('circuit open'),
      );
    const trial = t.outcome(slow());
    const others = [t.outcome(slow()), t.outcome(slow()), t.outcome(t.call())];
    await t.clock.advance(0); // lets every call start
    expect(started).toBe(1);
    expect(t.runs()).toBe(2); // the two failures that opened it: the third call did not run
    expect(t.breaker.state).toBe('half-open');
    gate.resolve('done');
    expect(await Promise.all(others)).toEqual(['Refused', 'Refused', 'Refused']);
    expect(await trial).toBe('done');
    expect(t.breaker.state).toBe('closed');
    expect(await t.call()).toBe('ok');
  });

  it('a call from before the circuit opened does not move it when it settles late', async () => {
    const t = setup(2, 1000);
    const gate = deferred<string>();
    const late = t.outcome(
      t.breaker.execute(
        () => gate.promise,
        () => new Refused('circuit open'),
      ),
    );
    await t.open();
    await t.clock.advance(1000);
    expect(t.breaker.state).toBe('half-open');
    gate.reject(new Counted('late failure'));
    expect(await late).toBe('Counted');
    // Still half-open, and the trial is still available.
    expect(t.breaker.state).toBe('half-open');
    expect(await t.call()).toBe('ok');
    expect(t.breaker.state).toBe('closed');
  });
});
