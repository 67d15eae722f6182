// The active node's watch over its backend (coordinator.ts): waiting for it to turn healthy after a start
// or restart, the steady-state health checks while active, and the restart policy applied when it stays
// unhealthy (restart with backoff, or give up and degrade so the node steps down).
import { ClosedError, withTimeout, type Clock, type Epoch, type Logger, type TimerHandle } from '@gc/core';
import { BackendError, BackendErrorCode } from './errors.js';
import type { CoordinatorPromMetrics } from './metrics.js';
import { restartDecision } from './restart.js';
import type { ActiveCoordinatorOptions, CoordinatorEvent, CoordinatorMetrics } from './sequence.js';
import type { Backend, HealthResult } from './types.js';

/** Polls `backend.health()` until it is healthy; throws once `signal` is aborted and it still is not. */
export async function waitHealthy(
  backend: Backend,
  signal: AbortSignal,
  clock: Clock,
  healthIntervalMs: number,
): Promise<HealthResult> {
  // A failover waits on this: probe soon after the start (10 ms), then back off (×2 up to 200 ms, or the
  // steady-state interval when shorter) so a slow service is not hammered.
  const cap = healthIntervalMs > 0 ? Math.max(10, Math.min(healthIntervalMs, 200)) : 200;
  let pollMs = 10;
  for (;;) {
    const h = await backend.health();
    if (h.healthy) return h;
    if (signal.aborted)
      throw new BackendError(BackendErrorCode.Unhealthy, `backend ${backend.name} not healthy: ${h.detail}`);
    // Aborted: the wait ends early and the loop checks the signal.
    await clock.sleep(Math.min(pollMs, cap), signal).catch(() => undefined);
    pollMs *= 2;
  }
}

/** What the watch uses of the coordinator that owns it. */
export interface BackendWatchHost {
  readonly options: ActiveCoordinatorOptions;
  readonly clock: Clock;
  readonly log: Logger;
  readonly prom: CoordinatorPromMetrics;
  /** The coordinator's counters; the watch bumps `backendRestarts` and `backendFailures`. */
  readonly counters: CoordinatorMetrics;
  /** The epoch being served. */
  epoch(): Epoch | undefined;
  /** True while the coordinator is active (not degraded, deactivating or closed). */
  active(): boolean;
  /** Runs `fn` in the coordinator's queue, after the transitions queued before it. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  emit(e: CoordinatorEvent): void;
  audit(action: string, data: Record<string, unknown>): void;
  /** The backend stays unhealthy and the restart policy gave up: the coordinator turns degraded. */
  degrade(): void;
}

/** Checks the backend every `healthIntervalMs` while active and restarts it by the restart policy. */
export class BackendWatch {
  readonly #backend: Backend;
  readonly #host: BackendWatchHost;
  #timer: TimerHandle | undefined;
  #gen = 0;
  #unhealthy = 0;
  #restartHistory: number[] = [];
  #abort = new AbortController();

  constructor(backend: Backend, host: BackendWatchHost) {
    this.#backend = backend;
    this.#host = host;
  }

  /** Starts watching a freshly activated backend (forgetting earlier failures and restarts). */
  start(): void {
    this.#unhealthy = 0;
    this.#restartHistory = [];
    const h = this.#host;
    if (h.options.healthIntervalMs <= 0) return;
    const gen = ++this.#gen;
    this.#abort = new AbortController();
    const tick = () => {
      this.#timer = h.clock.setTimeout(() => {
        void h.serial(async () => {
          if (gen !== this.#gen || !h.active()) return;
          await this.#check();
          if (gen === this.#gen && h.active()) tick();
        });
      }, h.options.healthIntervalMs);
    };
    tick();
  }

  /** Stops watching; cuts short a restart in progress. */
  stop(): void {
    this.#gen++;
    this.#abort.abort(new ClosedError('backend health watch'));
    if (this.#timer) this.#host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #check(): Promise<void> {
    const backend = this.#backend;
    const host = this.#host;
    const o = host.options;
    const epoch = host.epoch()!;
    let h: HealthResult;
    try {
      h = await backend.health();
    } catch (err) {
      h = { healthy: false, detail: (err as Error).message, latencyMs: 0 };
    }
    if (h.healthy) {
      this.#unhealthy = 0;
      return;
    }
    this.#unhealthy++;
    host.emit({ type: 'backend-unhealthy', epoch, consecutive: this.#unhealthy, detail: h.detail });
    if (this.#unhealthy < o.unhealthyThreshold) return;
    const now = host.clock.now();
    const d = restartDecision(
      { ...o.backendRestart, mode: 'always' },
      { exitCode: 1, signal: null },
      this.#restartHistory,
      now,
    );
    if (!d.restart) {
      host.counters.backendFailures++;
      host.prom.backendFailed();
      const reason = `backend ${backend.name} stays unhealthy (${h.detail}) and ${d.reason}; this node should step down`;
      host.log.error(reason, { epoch });
      host.emit({ type: 'backend-failed', epoch, reason });
      host.audit('backend.failed', { reason });
      host.degrade();
      return;
    }
    this.#restartHistory.push(now);
    host.counters.backendRestarts++;
    const watch = this.#abort.signal;
    // Aborted: the wait ends early and the next line checks the signal.
    await host.clock.sleep(d.delayMs, watch).catch(() => undefined);
    if (watch.aborted) return;
    const t0 = host.clock.now();
    let error: Error | undefined;
    try {
      await withTimeout(
        (async () => {
          if (backend.restart) await backend.restart();
          else {
            await backend.stop();
            await backend.start();
          }
          await waitHealthy(backend, watch, host.clock, o.healthIntervalMs);
        })(),
        o.timeouts.backendMs,
        `restart of backend ${backend.name}`,
        host.clock,
      );
      this.#unhealthy = 0;
    } catch (err) {
      error = err as Error;
    }
    const durationMs = host.clock.now() - t0;
    host.prom.backendRestart(!error);
    host.emit({
      type: 'backend-restart',
      epoch,
      attempt: d.attempt,
      delayMs: d.delayMs,
      ok: !error,
      durationMs,
      ...(error ? { error: error.message } : {}),
    });
    host.emit({
      type: 'metric',
      name: 'gc_backend_restarts_total',
      value: host.counters.backendRestarts,
      labels: {},
    });
    host.audit('backend.restart', {
      attempt: d.attempt,
      ok: !error,
      durationMs,
      ...(error ? { error: error.message } : {}),
    });
  }
}
