import { ErrorCode, GcError } from './errors.js';

/** Opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = object;

/**
 * All timing logic in gc goes through a Clock so that it can be tested on a {@link FakeClock}
 * and so that fault tests can run nodes on skewed clocks ({@link scaledClock}).
 */
export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin. Never goes backwards; use for every timing decision. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch. For display and records only, never for timing decisions. */
  wallNow(): number;
  /** Calls `fn` once after `ms` milliseconds of this clock's time. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; a no-op for a timer that already fired or was cleared. */
  clearTimeout(handle: TimerHandle): void;
  /** Resolves after `ms` milliseconds; rejects with code `GC_ABORTED` when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function abortError(signal: AbortSignal): GcError {
  return new GcError(ErrorCode.Aborted, 'sleep aborted', { cause: signal.reason });
}

function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(abortError(signal!));
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The process's real clock: `performance.now()` for monotonic time, `Date.now()` for wall time. */
export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  sleep: (ms, signal) => sleepOn(realClock, ms, signal),
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A manually driven clock for unit tests. Time moves only through {@link FakeClock.advance};
 * due timers fire in time order, and pending promise callbacks run between timers, so async
 * code driven by timers behaves as it would in real time.
 *
 * @example
 * const clock = new FakeClock();
 * const done = clock.sleep(1000);
 * await clock.advance(1000); // `done` is now resolved
 */
export class FakeClock implements Clock {
  #now: number;
  #wallOffset: number;
  #seq = 0;
  #timers = new Map<number, FakeTimer>();

  /** @param start monotonic start time in ms (default 0); @param wallStart wall time at start (default 2026-01-01). */
  constructor(start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#wallOffset = wallStart - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete((handle as { id: number }).id);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Number of timers not yet fired. */
  pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promise callbacks settle. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flush();
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      }
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await flush();
    }
    this.#now = target;
    await flush();
  }

  /** Moves time forward to the next pending timer and fires it; returns false when none is pending. */
  async next(): Promise<boolean> {
    let at = Infinity;
    for (const t of this.#timers.values()) at = Math.min(at, t.at);
    if (at === Infinity) return false;
    await this.advance(at - this.#now);
    return true;
  }
}

/** Lets every queued promise callback (and the callbacks they queue) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * A clock that runs `rate` times as fast as `base` (2 = twice as fast, 0.5 = half speed), for
 * clock-skew fault tests: a node on a fast clock believes its TTL ran out early.
 */
export function scaledClock(base: Clock, rate: number): Clock {
  if (!(rate > 0)) throw new RangeError(`clock rate must be > 0, got ${rate}`);
  const origin = base.now();
  const clock: Clock = {
    now: () => origin + (base.now() - origin) * rate,
    wallNow: () => base.wallNow(),
    setTimeout: (fn, ms) => base.setTimeout(fn, ms / rate),
    clearTimeout: (h) => base.clearTimeout(h),
    sleep: (ms, signal) => sleepOn(clock, ms, signal),
  };
  return clock;
}
