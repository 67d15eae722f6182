import type { Logger } from '@gc/core';

/** Calls every listener with `e`; one that throws is logged and does not stop the others. */
export function emitAll<E>(listeners: Iterable<(e: E) => void>, e: E, logger: Logger, what: string): void {
  for (const l of listeners) {
    try {
      l(e);
    } catch (err) {
      logger.error(`${what} event listener threw`, { err: String(err) });
    }
  }
}
