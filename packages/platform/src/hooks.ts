import { TimeoutError, withTimeout, type Clock, type Logger } from '@gc/core';
import type { AppHooks, HookFailure, HookName } from './types.js';

type AnyHook = (arg: never) => unknown;

/**
 * Holds an app's hook functions and runs them one after another, each with a timeout. A failure or
 * timeout is never swallowed: it is logged, reported to `onFailure` (which audits and counts it) and
 * returned, so the caller decides what it means (a failed onActive makes the node step down).
 */
export class HookRunner {
  readonly #hooks = new Map<HookName, AnyHook[]>();
  readonly #app: string;
  /** Timeout of each hook call, in ms. */
  readonly timeoutMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #onFailure: (f: HookFailure) => void;

  constructor(o: {
    app: string;
    timeoutMs: number;
    clock: Clock;
    logger: Logger;
    onFailure: (f: HookFailure) => void;
  }) {
    this.#app = o.app;
    this.timeoutMs = o.timeoutMs;
    this.#clock = o.clock;
    this.#logger = o.logger;
    this.#onFailure = o.onFailure;
  }

  /** Adds `fn` to `hook`; returns a function that removes it. */
  add<H extends HookName>(hook: H, fn: AppHooks[H]): () => void {
    if (typeof fn !== 'function') throw new TypeError(`${hook} needs a function, got ${typeof fn}`);
    const list = this.#hooks.get(hook) ?? [];
    list.push(fn);
    this.#hooks.set(hook, list);
    return () => {
      const l = this.#hooks.get(hook);
      const i = l?.indexOf(fn) ?? -1;
      if (l && i >= 0) l.splice(i, 1);
    };
  }

  /** How many functions are registered for `hook`. */
  count(hook: HookName): number {
    return this.#hooks.get(hook)?.length ?? 0;
  }

  /** True when at least one function is registered for `hook`. */
  has(hook: HookName): boolean {
    return (this.#hooks.get(hook)?.length ?? 0) > 0;
  }

  /** Runs every function of `hook` in order; returns the failures (empty when all succeeded). */
  async run<H extends HookName>(hook: H, arg: Parameters<AppHooks[H]>[0]): Promise<HookFailure[]> {
    return (await this.ask(hook, arg)).failures;
  }

  /**
   * Runs every function of `hook` in order, as {@link HookRunner.run} does, and also returns what the
   * functions that succeeded returned (in order): for hooks that answer (`onMigrationStart`).
   */
  async ask<H extends HookName>(
    hook: H,
    arg: Parameters<AppHooks[H]>[0],
  ): Promise<{ results: Array<Awaited<ReturnType<AppHooks[H]>>>; failures: HookFailure[] }> {
    const failures: HookFailure[] = [];
    const results: Array<Awaited<ReturnType<AppHooks[H]>>> = [];
    for (const fn of [...(this.#hooks.get(hook) ?? [])]) {
      const started = this.#clock.now();
      try {
        results.push(
          (await withTimeout(
            Promise.resolve().then(() => fn(arg as never)),
            this.timeoutMs,
            `${this.#app}.${hook}`,
            this.#clock,
          )) as Awaited<ReturnType<AppHooks[H]>>,
        );
        this.#logger.debug('hook done', {
          app: this.#app,
          hook,
          ms: Math.round(this.#clock.now() - started),
        });
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        const failure: HookFailure = { app: this.#app, hook, error, timedOut: err instanceof TimeoutError };
        failures.push(failure);
        this.#logger.error('hook failed', { app: this.#app, hook, err: error, timedOut: failure.timedOut });
        this.#onFailure(failure);
      }
    }
    return { results, failures };
  }
}
