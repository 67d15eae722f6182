import type { Clock, Logger } from '@gc/core';
import { BackendError, BackendErrorCode } from './errors.js';
import {
  BackendState,
  type BackendContext,
  type BackendEvent,
  type BackendStateValue,
  type LogsOptions,
} from './types.js';

/**
 * What the built-in backends (process, systemd, docker) share: the instance name, a child logger,
 * the clock, the lifecycle state with the time of its last change, an event listener whose throws
 * are logged instead of escaping, and an idempotent close(). Internal to this package.
 */
export abstract class BuiltinBackend {
  /** Instance name (logs, events, default resource names). */
  readonly name: string;
  /** The context's logger with `backend`, `kind` and the subclass's fields bound. */
  protected readonly log: Logger;
  /** The context's clock. */
  protected readonly clock: Clock;
  /** Set by the first close(). */
  protected closed = false;
  readonly #onEvent: (e: BackendEvent) => void;
  #state: BackendStateValue = BackendState.Stopped;
  #since = Date.now();

  /**
   * @param kind - The backend kind, bound on the logger as `kind`.
   * @param ctx - What the host gave the factory.
   * @param logFields - More fields bound on the logger after `backend` and `kind` (a unit, a container).
   */
  protected constructor(kind: string, ctx: BackendContext, logFields: Record<string, unknown> = {}) {
    this.name = ctx.name;
    this.clock = ctx.clock;
    this.log = ctx.logger.child({ backend: ctx.name, kind, ...logFields });
    this.#onEvent = ctx.onEvent;
  }

  /** Stops the service; close() calls it. */
  abstract stop(): Promise<void>;

  /** Most recent log lines of the service; {@link BuiltinBackend.failStart} quotes them. */
  abstract logs(opts?: LogsOptions): Promise<string[]>;

  /** The lifecycle state. */
  protected get state(): BackendStateValue {
    return this.#state;
  }

  /** Wall-clock ms of the last state change (the construction time before any). */
  protected get sinceWallMs(): number {
    return this.#since;
  }

  /** Hands `e` to the context's listener; a throw there is logged, never propagated. */
  protected emit(e: BackendEvent): void {
    try {
      this.#onEvent(e);
    } catch (err) {
      this.log.error('backend event listener threw', { err });
    }
  }

  /** Moves to state `to` and emits a `state` event; nothing when already there. */
  protected setState(to: BackendStateValue): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#since = this.clock.wallNow();
    this.emit({ type: 'state', backend: this.name, from, to });
  }

  /**
   * Polls `step` every `pollMs` until it returns `true`; any other answer is the latest reason why
   * not, and `step` may throw to give up. Once `timeoutMs` has passed since the call, the state is
   * Failed and an Unhealthy {@link BackendError} with the message `timedOut(last reason)` is thrown.
   */
  protected async pollUntilReady(
    timeoutMs: number,
    pollMs: number,
    step: () => Promise<true | string>,
    timedOut: (last: string) => string,
  ): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    let last = 'not probed';
    for (;;) {
      const r = await step();
      if (r === true) return;
      last = r;
      if (this.clock.now() >= deadline) {
        this.setState(BackendState.Failed);
        throw new BackendError(BackendErrorCode.Unhealthy, timedOut(last));
      }
      await this.clock.sleep(pollMs);
    }
  }

  /**
   * Moves to Failed and returns the StartFailed {@link BackendError} to throw: `message`, then the
   * service's last 10 log lines (none when reading them fails too).
   */
  protected async failStart(message: string): Promise<BackendError> {
    this.setState(BackendState.Failed);
    // The start failure is the error to report; logs that cannot be read leave the message without them.
    const logs = await this.logs({ lines: 10 }).catch(() => []);
    return new BackendError(BackendErrorCode.StartFailed, `${message}\n${logs.join('\n')}`);
  }

  /** Stops the service unless it is stopped already. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.#state !== BackendState.Stopped) await this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
