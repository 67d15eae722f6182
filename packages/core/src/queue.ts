/**
 * A push queue read as an async iterable (the shape of every gc watcher): `push()` items, iterate them
 * with `for await`, `stop()` ends iteration after the queued items.
 */
export class PushQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #stopped = false;
  readonly #onStop: () => void;

  constructor(onStop: () => void = () => undefined) {
    this.#onStop = onStop;
  }

  /** True once stopped. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Queues an item (ignored after stop). */
  push(item: T): void {
    if (this.#stopped) return;
    this.#items.push(item);
    this.#wake?.();
  }

  /** Ends iteration after the queued items; calls the onStop callback once. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#onStop();
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        while (this.#items.length) yield this.#items.shift()!;
        if (this.#stopped) return;
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = undefined;
      }
    } finally {
      this.stop();
    }
  }
}
