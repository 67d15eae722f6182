import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Clock, TimerHandle } from './clock.js';
import type { Logger } from './logger.js';

/** V8's `gc()` as `--expose-gc` defines it. */
export type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => unknown;

/** Options of {@link startIdleGc}. */
export interface IdleGcOptions {
  clock: Clock;
  logger?: Logger;
  /** How often the event loop's utilization is looked at, in ms. Default 60000. */
  checkEveryMs?: number;
  /** Utilization (0–1) over the last check interval under which the process counts as idle. Default 0.05. */
  idleBelow?: number;
  /** At least this long between two collections asked for, in ms. Default 60000. */
  minIntervalMs?: number;
  /** The collector (tests); default V8's, made reachable at the first idle check. */
  gc?: GcFunction;
  /** The event loop's utilization since `prev` (tests); default `performance.eventLoopUtilization`. */
  utilization?: (prev?: EventLoopUtilization) => EventLoopUtilization;
}

/** What {@link startIdleGc} returns. */
export interface IdleGc {
  /** Collections asked for so far. */
  collections(): number;
  /** Stops the checks. */
  stop(): void;
}

/**
 * V8's collector when this process exposes it — started with `--expose-gc`, or after {@link v8Gc} ran in
 * any thread — without exposing it otherwise. Worker threads use it to follow their process's choice.
 */
export function exposedGc(): GcFunction | undefined {
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (typeof existing === 'function') return existing;
  try {
    const fn: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof fn === 'function' ? (fn as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * V8's collector as a function, without starting Node with `--expose-gc`: the flag is set at run time and
 * `gc` read from a fresh context (the flag only defines it in contexts made after it). Undefined when the
 * runtime refuses.
 */
export function v8Gc(): GcFunction | undefined {
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const fn: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof fn === 'function' ? (fn as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps an idle process's heap compact. V8 collects its old generation when it reaches a limit set at the
 * previous full collection; a process that does little allocates slowly, so garbage piles up for many
 * minutes before that and the resident memory creeps up while nothing happens (+13 % over ten idle minutes
 * in `pnpm bench footprint`). Every `checkEveryMs` this looks at the event loop's utilization over the
 * interval; when it was under `idleBelow` and no collection was asked for in the last `minIntervalMs`, it
 * asks V8 for a full one, incremental where V8 can (`execution: 'async'`). A busy process is left alone:
 * it reaches its limits soon enough. The cost is one collection of the heap (about 10 ms for 20 MiB) per
 * `minIntervalMs` of idleness, a few hundredths of a percent of a core at the default of a minute; the
 * pages V8 keeps after a collection are what the heap reached before it, so collecting often keeps the
 * resident memory flat.
 */
export function startIdleGc(o: IdleGcOptions): IdleGc {
  const every = o.checkEveryMs ?? 60_000;
  const idleBelow = o.idleBelow ?? 0.05;
  const minInterval = o.minIntervalMs ?? 60_000;
  const utilization = o.utilization ?? ((prev) => performance.eventLoopUtilization(prev));
  let gc: GcFunction | undefined | null = o.gc;
  let last = utilization();
  let lastGcAt = -Infinity;
  let count = 0;
  let timer: TimerHandle | undefined;
  let stopped = false;
  const check = (): void => {
    if (stopped) return;
    const now = utilization();
    const used = utilization(last).utilization;
    last = now;
    const at = o.clock.now();
    if (used < idleBelow && at - lastGcAt >= minInterval) {
      gc ??= v8Gc() ?? null;
      if (gc) {
        lastGcAt = at;
        count++;
        try {
          const r = gc({ type: 'major', execution: 'async' });
          // A refused collection only skips this idle minute.
          if (r instanceof Promise) r.catch(() => undefined);
        } catch (err) {
          o.logger?.debug('idle collection refused', { err: String(err) });
        }
      }
    }
    timer = o.clock.setTimeout(check, every);
    (timer as { unref?: () => void }).unref?.();
  };
  timer = o.clock.setTimeout(check, every);
  (timer as { unref?: () => void }).unref?.();
  return {
    collections: () => count,
    stop: () => {
      stopped = true;
      if (timer !== undefined) o.clock.clearTimeout(timer);
    },
  };
}
