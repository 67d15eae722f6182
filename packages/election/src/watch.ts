// The async iterator behind Election.watch(): leader changes queued for one consumer.
import type { LeaderInfo, LeaderWatch } from './types.js';

/** The async iterator behind {@link Election.watch}. Keeps at most 100 undelivered changes. */
export class WatchImpl implements LeaderWatch {
  readonly #queue: LeaderInfo[] = [];
  readonly #waiters: Array<(r: IteratorResult<LeaderInfo>) => void> = [];
  readonly #onStop: () => void;
  #done = false;

  constructor(onStop: () => void) {
    this.#onStop = onStop;
  }

  push(info: LeaderInfo): void {
    if (this.#done) return;
    const w = this.#waiters.shift();
    if (w) return w({ value: info, done: false });
    this.#queue.push(info);
    if (this.#queue.length > 100) this.#queue.shift();
  }

  stop(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onStop();
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<LeaderInfo> {
    return {
      next: () => {
        const v = this.#queue.shift();
        if (v) return Promise.resolve({ value: v, done: false });
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.#waiters.push(r));
      },
      return: () => {
        this.stop();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
