import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Clock, Logger } from '@gc/core';

/** After a failure to watch, arming is not tried again for this long (polls every `pollIntervalMs` meanwhile). */
const RETRY_AFTER_FAILURE_MS = 60_000;

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
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #onChange: () => void;
  #watcher: FSWatcher | undefined;
  /** Set by close(), or when watching is turned off in the options: arm() does nothing. */
  #off: boolean;
  /** After a failure: no new attempt before this time (clock ms). */
  #retryAt = 0;
  #failures = 0;

  constructor(path: string, enabled: boolean, clock: Clock, logger: Logger, onChange: () => void) {
    this.#path = path;
    this.#clock = clock;
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
    if (this.#watcher || this.#off || this.#clock.now() < this.#retryAt) return false;
    const wal = `${basename(this.#path)}-wal`;
    try {
      const w = watch(dirname(this.#path), { persistent: false }, (_event, file) => {
        if (file === wal && this.#watcher === w) this.#onChange();
      });
      w.on('error', (err) => {
        if (this.#watcher === w) this.#watcher = undefined;
        w.close();
        this.#failed('wal file watch failed', err);
      });
      this.#watcher = w;
      return true;
    } catch (err) {
      this.#failed('cannot watch the database folder', err);
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

  #failed(what: string, err: unknown): void {
    this.#retryAt = this.#clock.now() + RETRY_AFTER_FAILURE_MS;
    // Logged the first time and then every tenth (inotify's watch limit reached stays so for a while).
    if (this.#failures++ % 10 === 0) {
      this.#logger.warn(`${what}; polling every pollIntervalMs, trying again in a minute`, {
        err: String(err),
        failures: this.#failures,
      });
    }
  }
}
