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
