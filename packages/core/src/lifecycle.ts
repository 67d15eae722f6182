/** A one-shot "has closed" signal: the promise a resource's `closed()` returns, and what settles it. */
export interface ClosedSignal {
  /** Resolves once {@link ClosedSignal.resolve} has been called. Never rejects. */
  readonly promise: Promise<void>;
  /** Resolves {@link ClosedSignal.promise}. Later calls do nothing. */
  resolve(): void;
}

/**
 * A new {@link ClosedSignal}, for a long-lived resource's `closed()`: call `resolve()` at the end of its
 * close path (in a `finally`, so that a close that fails partway still resolves it) and wherever the
 * resource ends by itself. Node 20 has no `Promise.withResolvers`.
 *
 * @example
 * readonly #closed = closedSignal();
 * async close() { try { await this.#stop(); } finally { this.#closed.resolve(); } }
 * closed() { return this.#closed.promise; }
 */
export function closedSignal(): ClosedSignal {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve: () => resolve() };
}

/**
 * The lifecycle every long-lived gc resource has (see docs/conventions.md): `close()` releases everything and
 * is idempotent, `closed()` resolves once it has, `await using` closes it.
 */
export interface Closable extends AsyncDisposable {
  /** Releases everything the resource holds. Idempotent: a second call waits for the first. */
  close(): Promise<void>;
  /**
   * Resolves once the resource has closed: after `close()` has finished, also when it failed partway (and
   * when the resource ended by itself, where its TSDoc says it can). Never rejects.
   */
  closed(): Promise<void>;
  /** Calls `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A base class that implements {@link Closable} around the one method a resource writes, `closeResources()`:
 * `close()` runs it once (a second call, also a concurrent one, waits for the first and shares its outcome),
 * `closed()` resolves after it even when it throws, and `[Symbol.asyncDispose]` calls `close()`.
 *
 * @example
 * class Poller extends ClosableResource {
 *   #timer = setInterval(poll, 1000);
 *   protected async closeResources() { clearInterval(this.#timer); }
 * }
 */
export abstract class ClosableResource implements Closable {
  readonly #signal = closedSignal();
  #closing: Promise<void> | undefined;

  /** What closing releases; runs once, from the first {@link close}. */
  protected abstract closeResources(): Promise<void>;

  /** True from the first {@link close} call on. */
  protected get closing(): boolean {
    return this.#closing !== undefined;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    // Recorded before closeResources() starts, so that a close() from inside it (or `closing`) sees it.
    let settle!: (err?: Error) => void;
    this.#closing = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    void (async () => {
      let failure: Error | undefined;
      try {
        await this.closeResources();
      } catch (err) {
        failure = err instanceof Error ? err : new Error(`close failed: ${String(err)}`);
      }
      // closed() first: whoever awaited close() finds closed() already resolved.
      this.#signal.resolve();
      settle(failure);
    })();
    return this.#closing;
  }

  closed(): Promise<void> {
    return this.#signal.promise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
