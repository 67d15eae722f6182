import type { Clock } from './clock.js';
import { realClock } from './clock.js';
import { TimeoutError } from './errors.js';

/**
 * Resolves or rejects like `promise`, or rejects with {@link TimeoutError} naming `what` after
 * `timeoutMs` on `clock`. The timer is always cleared.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
  clock: Clock = realClock,
): Promise<T> {
  let handle: object | undefined;
  const timeout = new Promise<never>((_, reject) => {
    handle = clock.setTimeout(() => reject(new TimeoutError(what, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (handle) clock.clearTimeout(handle);
  }
}
