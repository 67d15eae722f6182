/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many ms. Default 10000. */
  timeoutMs?: number;
  /** Poll interval in ms. Default 25. */
  intervalMs?: number;
  /** What is being waited for, used in the timeout error (a function is called then, to show the last state). */
  message?: string | (() => string);
}

/**
 * Polls `condition` until it returns a truthy value (which is returned) or the timeout passes.
 * A condition that throws counts as "not yet"; the last error is attached to the timeout error.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await condition();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const what = (typeof opts.message === 'function' ? opts.message() : opts.message) ?? 'condition';
      throw new Error(
        `waitFor: ${what} not met within ${timeoutMs} ms${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`,
        { cause: lastError },
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Sleeps `ms` milliseconds. For pacing test loads only; never as a synchronization mechanism. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
