// Keeping a watch (a KV bucket's, a stream consumer's) going across failures: one loop instead of a copy
// per package.
import type { Clock } from './clock.js';
import type { LogFields, Logger } from './logger.js';

/** A watch: its entries, and a way to end it (as nats.js watches and consumers have). */
export interface StoppableIterable<E> extends AsyncIterable<E> {
  stop(): void;
}

/**
 * Passes every entry of `first`, and then of each watch `next()` opens after one fails or ends, to
 * `observe`, until the returned function is called. A new watch is opened `retryMs` (default 250) after
 * the last one ended, so a broken connection or a deleted bucket does not spin; each failure is logged at
 * warn as `{what} failed; resuming` with `fields`. `observe` runs synchronously for each entry; an error
 * it throws ends that watch like a failure of the watch itself.
 *
 * @example
 * const stop = keepWatching(await kv.watch(), () => kv.watch(), (e) => seen.set(e.key, e), {
 *   clock, logger, what: 'lock watch', fields: { bucket },
 * });
 */
export function keepWatching<E>(
  first: StoppableIterable<E>,
  next: () => Promise<StoppableIterable<E>>,
  observe: (entry: E) => void,
  o: { clock: Clock; logger: Logger; what: string; fields?: LogFields; retryMs?: number },
): () => void {
  let stopped = false;
  let current: StoppableIterable<E> | undefined = first;
  const run = async () => {
    let w: StoppableIterable<E> | undefined = first;
    while (!stopped) {
      try {
        w ??= await next();
        current = w;
        if (stopped) {
          w.stop();
          break;
        }
        for await (const e of w) observe(e);
      } catch (err) {
        if (!stopped) o.logger.warn(`${o.what} failed; resuming`, { ...o.fields, err });
      }
      w = undefined;
      // Only a pause before the next watch; stopping ends the loop.
      if (!stopped) await o.clock.sleep(o.retryMs ?? 250).catch(() => undefined);
    }
  };
  void run();
  return () => {
    stopped = true;
    current?.stop();
  };
}
