/** A push queue read as an async iterable; `stop()` ends iteration after the queued items. */
export class PushQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;
  #stopped = false;
  readonly #onStop: () => void;

  constructor(onStop: () => void = () => undefined) {
    this.#onStop = onStop;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  push(item: T): void {
    if (this.#stopped) return;
    this.#items.push(item);
    this.#wake?.();
  }

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
