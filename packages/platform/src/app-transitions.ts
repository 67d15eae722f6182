// The role of an app on this node and its transitions (activate, deactivate), run one at a time in a queue:
// each traced, timed and audited; a node whose activation fails hands leadership on and sits the election
// out for longer each time. The app (app.ts) decides when they run; this holds what they change.
import { TimeoutError, type Epoch } from '@gc/core';
import type { ActiveCoordinator } from '@gc/backends';
import type { Election } from '@gc/election';
import type { RpcServer } from '@gc/rpc';
import { trace, SpanStatusCode } from '@opentelemetry/api';
import type { AppDeps } from './app-deps.js';
import { AppMode, AppRole, type AppElectionOptions, type AppStatus } from './types.js';

const tracer = trace.getTracer('@gc/platform');

/** What the transitions of one app need from it. */
export interface AppTransitionsDeps {
  name: string;
  mode: AppMode;
  /** The app's election timings (its TTL and cooldown set the backoff after failed activations). */
  electionOptions: AppElectionOptions;
  d: AppDeps;
  /** The app's election, once started (active-passive only). */
  election: () => Election | undefined;
  /** The coordinator that runs the app's components as the active sequence, once they started. */
  coordinator: () => ActiveCoordinator | undefined;
  rpc: () => RpcServer | undefined;
  /** True once the app is stopping. */
  stopping: () => boolean;
}

/**
 * The role, epoch and transition queue of one app on this node, and its activation failures in a row. The
 * queue runs one transition at a time; {@link AppTransitions.abort} aborts the signal of the one under way.
 */
export class AppTransitions {
  readonly #a: AppTransitionsDeps;
  readonly #d: AppDeps;
  #role: AppRole = AppRole.Stopped;
  #epoch: Epoch = 0;
  #queue: Promise<void> = Promise.resolve();
  #current: AbortController | undefined;
  #reason = '';
  #lastActivation: Record<string, number> | undefined;
  /** Activation attempts on this node that failed in a row (reset by a successful one, or another node leading). */
  #activateFailures = 0;
  #lastActivateError: { at: string; error: string } | undefined;
  #roleWaiters = new Set<() => void>();

  constructor(a: AppTransitionsDeps) {
    this.#a = a;
    this.#d = a.d;
  }

  get role(): AppRole {
    return this.#role;
  }

  /** The epoch the current (or last) activation ran with; 0 once deactivated. */
  get epoch(): Epoch {
    return this.#epoch;
  }

  /** Why the current (or last) transition runs: what the hooks are told. */
  get reason(): string {
    return this.#reason;
  }

  /** Durations of the last activation's phases on this node, in ms. */
  get lastActivation(): Record<string, number> | undefined {
    return this.#lastActivation;
  }

  /** This node's activation failures in a row, while there are any. */
  get activation(): AppStatus['activation'] {
    return this.#lastActivateError
      ? { failures: this.#activateFailures, lastError: this.#lastActivateError }
      : undefined;
  }

  /** The `activation-<app>` health check: a node that cannot become active is no standby. */
  activationHealth(): true | string {
    return this.#lastActivateError
      ? `activation failed ${this.#activateFailures} time(s) in a row, last at ${this.#lastActivateError.at}: ${this.#lastActivateError.error}`
      : true;
  }

  /**
   * Another node leads: this node's failed activations (and its backoff) are history — the audit keeps
   * them; as a standby its health is its replica's. The next election it wins tries afresh.
   */
  forgetFailures(): void {
    if (this.#lastActivateError) {
      this.#lastActivateError = undefined;
      this.#activateFailures = 0;
    }
  }

  /** Aborts the signal of the transition under way (it is superseded). */
  abort(): void {
    this.#current?.abort();
  }

  isActive(): boolean {
    return this.#role === AppRole.Active;
  }

  async waitForActive(timeoutMs: number): Promise<void> {
    if (this.isActive()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.isActive()) {
          cleanup();
          resolve();
        }
      };
      const timer = this.#d.clock.setTimeout(() => {
        cleanup();
        reject(
          new TimeoutError(
            `waiting for app ${this.#a.name} to become active on ${this.#d.nodeId}`,
            timeoutMs,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        this.#roleWaiters.delete(check);
        this.#d.clock.clearTimeout(timer);
      };
      this.#roleWaiters.add(check);
    });
  }

  setRole(role: AppRole): void {
    if (this.#role === role) return;
    this.#role = role;
    this.#d.metrics.appActive.set({ app: this.#a.name }, role === AppRole.Active ? 1 : 0);
    // The leader subject follows the role at once (the RPC server also polls as a backstop).
    void this.#a
      .rpc()
      ?.refresh()
      .catch((err: unknown) => this.#d.logger.warn('rpc refresh failed', { err }));
    for (const w of [...this.#roleWaiters]) w();
  }

  enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch((err: unknown) =>
      this.#d.logger.error('app transition failed', { app: this.#a.name, err }),
    );
    return this.#queue;
  }

  async activate(epoch: Epoch, reason: string): Promise<void> {
    if (this.#a.stopping()) return;
    const election = this.#a.election();
    if (this.#a.mode === AppMode.ActivePassive && !(election?.isLeader() && election.epoch() === epoch))
      return;
    const ac = new AbortController();
    this.#current = ac;
    this.#epoch = epoch;
    this.#reason = reason;
    this.setRole(AppRole.Activating);
    const started = this.#d.clock.now();
    const error = await tracer.startActiveSpan('gc.app.activate', async (span) => {
      span.setAttributes(this.#spanAttributes(epoch, reason));
      let err: Error | undefined;
      try {
        const report = await this.#a.coordinator()!.activate(epoch);
        this.#lastActivation = Object.fromEntries(
          report.phases.map((ph) => [ph.phase, Math.round(ph.durationMs)]),
        );
        for (const ph of report.phases)
          this.#d.metrics.activationPhaseSeconds.observe(
            { app: this.#a.name, phase: ph.phase },
            ph.durationMs / 1000,
          );
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e));
      }
      if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
      return err;
    });
    const seconds = (this.#d.clock.now() - started) / 1000;
    this.#d.metrics.transitionSeconds.observe({ app: this.#a.name, transition: 'activate' }, seconds);
    if (error) {
      // A node that cannot become active (a failed phase or onActive) hands leadership on, and sits the
      // election out for longer each time it fails again (a broken disk, a port taken, a missing binary), so a
      // lone node with a persistent fault retries with backoff instead of several times a second.
      this.#activateFailures++;
      this.#lastActivateError = { at: new Date(this.#d.clock.wallNow()).toISOString(), error: error.message };
      const cooldownMs = this.#activationBackoffMs();
      this.#d.audit(
        'app.activate_failed',
        { epoch, error: error.message, attempt: this.#activateFailures, retryInMs: cooldownMs },
        this.#activateFailures > 1 ? 'error' : 'warn',
      );
      this.#epoch = 0;
      this.setRole(AppRole.Passive);
      if (election?.isLeader()) await election.stepDown({ cooldownMs });
      return;
    }
    if (ac.signal.aborted) return; // a deactivate is queued behind us
    this.#activateFailures = 0;
    this.#lastActivateError = undefined;
    this.setRole(AppRole.Active);
    this.#d.audit('app.activated', {
      epoch,
      reason,
      ms: Math.round(seconds * 1000),
      ...(this.#lastActivation ? { phases: this.#lastActivation } : {}),
    });
  }

  async deactivate(reason: string): Promise<void> {
    if (this.#role !== AppRole.Active && this.#role !== AppRole.Activating) return;
    const epoch = this.#epoch;
    this.setRole(AppRole.Deactivating);
    const started = this.#d.clock.now();
    await tracer.startActiveSpan('gc.app.deactivate', async (span) => {
      span.setAttributes(this.#spanAttributes(epoch, reason));
      let err: Error | undefined;
      this.#reason = reason;
      await this.#a
        .coordinator()
        ?.deactivate(reason)
        .catch((e: unknown) => {
          err = e instanceof Error ? e : new Error(String(e));
        });
      if (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        this.#d.audit('app.deactivate_failed', { epoch, error: err.message });
      }
      span.end();
    });
    const seconds = (this.#d.clock.now() - started) / 1000;
    this.#d.metrics.transitionSeconds.observe({ app: this.#a.name, transition: 'deactivate' }, seconds);
    this.#epoch = 0;
    this.setRole(this.#a.stopping() ? AppRole.Stopped : AppRole.Passive);
    this.#d.audit('app.deactivated', { epoch, reason, ms: Math.round(seconds * 1000) });
  }

  /** The attributes of this app's `gc.app.activate` and `gc.app.deactivate` spans. */
  #spanAttributes(epoch: Epoch, reason: string): Record<string, string | number> {
    return { 'gc.app': this.#a.name, 'gc.node': this.#d.nodeId, 'gc.epoch': epoch, 'gc.reason': reason };
  }

  /**
   * How long this node stays out of the election after its n-th activation failure in a row: the election's
   * cooldown for the first, then doubling, up to ten TTLs (at least 30 s).
   */
  #activationBackoffMs(): number {
    const o = this.#a.electionOptions;
    const ttlMs = o.ttlMs ?? 3000;
    const base = o.cooldownMs ?? o.renewIntervalMs ?? Math.round(ttlMs / 3);
    const cap = Math.max(30_000, 10 * ttlMs);
    return Math.min(cap, base * 2 ** Math.min(20, this.#activateFailures - 1));
  }
}
