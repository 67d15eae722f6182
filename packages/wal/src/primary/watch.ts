import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '@gc/core';

/**
 * The watch of a primary's `-wal` file that brings the next capture round forward while the primary is
 * idle. inotify events carry no content: the round reads the file as always, so a missed or spurious event
 * costs latency, never data.
 *
 * The watch is held only while it saves something. Each commit raises several events (every write to the
 * WAL), and under load the capture polls every `pollIntervalMs` anyway: there the events only wake the
 * capture's thread thousands of times a second for nothing (with the engine in a worker, at
 * `synchronous=FULL`, that took a fifth of the app's commit rate). So the engine disarms the watch once it
 * has been busy for a while, and arms it again when a round finds nothing to do.
 */
export class WalFileWatch {
  readonly #path: string;
  readonly #logger: Logger;
  readonly #onChange: () => void;
  #watcher: FSWatcher | undefined;
  /** Set when watching failed or after close(): no further attempts. */
  #off: boolean;

  constructor(path: string, enabled: boolean, logger: Logger, onChange: () => void) {
    this.#path = path;
    this.#logger = logger;
    this.#onChange = onChange;
    this.#off = !enabled;
  }

  /** True while the watch is on. */
  get armed(): boolean {
    return this.#watcher !== undefined;
  }

  /**
   * Starts watching. True when the watch was not on before: a change made before this call raised no event,
   * so the caller looks at the file once more.
   */
  arm(): boolean {
    if (this.#watcher || this.#off) return false;
    const wal = `${basename(this.#path)}-wal`;
    try {
      const w = watch(dirname(this.#path), { persistent: false }, (_event, file) => {
        if (file === wal && this.#watcher === w) this.#onChange();
      });
      w.on('error', (err) => {
        this.#logger.warn('wal file watch failed; polling every pollIntervalMs', { err: String(err) });
        this.#off = true;
        this.disarm();
      });
      this.#watcher = w;
      return true;
    } catch (err) {
      this.#logger.warn('cannot watch the database folder; polling every pollIntervalMs', {
        err: String(err),
      });
      this.#off = true;
      return false;
    }
  }

  /** Stops watching (until the next arm()). */
  disarm(): void {
    const w = this.#watcher;
    this.#watcher = undefined;
    w?.close();
  }

  /** Stops watching for good. */
  close(): void {
    this.#off = true;
    this.disarm();
  }
}
