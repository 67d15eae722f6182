// The coordinator of the active sequence: runs its steps in order on activation and in reverse on
// deactivation, each timed, audited and fenced by the leadership epoch (vocabulary in sequence.ts, the
// backend's health watch and restarts in backend-watch.ts).
import {
  ClosedError,
  ClosableResource,
  createFence,
  realClock,
  silentLogger,
  withTimeout,
  type Clock,
  type Epoch,
  type Fence,
  type Logger,
} from '@gc/core';
import { BackendWatch, waitHealthy } from './backend-watch.js';
import { PhaseError } from './errors.js';
import { coordinatorMetrics, type CoordinatorPromMetrics } from './metrics.js';
import type { Backend } from './types.js';
import {
  CoordinatorState,
  defaultActiveCoordinatorOptions,
  Phase,
  type ActiveCoordinator,
  type ActiveCoordinatorOptions,
  type ActiveSteps,
  type CoordinatorEvent,
  type CoordinatorMetrics,
  type CoordinatorStateValue,
  type Direction,
  type PhaseContext,
  type PhaseName,
  type PhaseTiming,
  type SequenceReport,
  type SequenceStep,
} from './sequence.js';

const ORDER: PhaseName[] = [Phase.Promote, Phase.Vip, Phase.Backend, Phase.OnActive];

/** The built-in record form as an ordered sequence. */
function sequenceOf(steps: ActiveSteps): SequenceStep[] {
  const out: SequenceStep[] = [];
  for (const name of ORDER) {
    if (name === Phase.Backend) {
      if (steps.backend) out.push({ name, backend: steps.backend });
    } else {
      const step = steps[name as 'promote' | 'vip' | 'onActive'];
      if (step) out.push({ name, activate: (c) => step.activate(c), deactivate: (c) => step.deactivate(c) });
    }
  }
  return out;
}

class Coordinator extends ClosableResource implements ActiveCoordinator {
  readonly #o: ActiveCoordinatorOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #fence: Fence;
  readonly #prom: CoordinatorPromMetrics;
  #state: CoordinatorStateValue = CoordinatorState.Passive;
  #epoch: Epoch | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #done: PhaseName[] = [];
  #abort = new AbortController();
  readonly #m: CoordinatorMetrics = {
    activations: 0,
    activationFailures: 0,
    deactivations: 0,
    deactivationFailures: 0,
    backendRestarts: 0,
    backendFailures: 0,
    lastActivation: undefined,
    lastDeactivation: undefined,
  };

  readonly #sequence: SequenceStep[];
  /** Watches the backend step's backend while active (none without one). */
  readonly #watch: BackendWatch | undefined;

  constructor(o: ActiveCoordinatorOptions) {
    super();
    this.#o = o;
    this.#sequence = o.sequence ?? sequenceOf(o.steps);
    const names = new Set<string>();
    for (const step of this.#sequence) {
      if (names.has(step.name)) throw new TypeError(`active sequence: two steps named ${step.name}`);
      names.add(step.name);
    }
    const backends = this.#sequence.filter((x): x is SequenceStep & { backend: Backend } => 'backend' in x);
    if (backends.length > 1) throw new TypeError('active sequence: at most one backend step');
    const backend = backends[0]?.backend;
    this.#clock = o.clock ?? realClock;
    this.#log = (o.logger ?? silentLogger).child({ component: 'active-coordinator', app: o.name });
    this.#fence = o.fence ?? createFence();
    this.#prom = coordinatorMetrics(o.registry, o.name);
    this.#prom.state(this.#state, Object.values(CoordinatorState));
    this.#watch =
      backend &&
      new BackendWatch(backend, {
        options: o,
        clock: this.#clock,
        log: this.#log,
        prom: this.#prom,
        counters: this.#m,
        epoch: () => this.#epoch,
        active: () => this.#state === CoordinatorState.Active,
        serial: (fn) => this.#serial(fn),
        emit: (e) => this.#emit(e),
        audit: (action, data) => this.#audit(action, data),
        degrade: () => this.#setState(CoordinatorState.Degraded),
      });
  }

  get state(): CoordinatorStateValue {
    return this.#state;
  }

  get epoch(): Epoch | undefined {
    return this.#epoch;
  }

  #emit(e: CoordinatorEvent): void {
    try {
      this.#o.onEvent?.(e);
    } catch (err) {
      this.#log.error('coordinator event listener threw', { err });
    }
  }

  #audit(action: string, data: Record<string, unknown>): void {
    this.#emit({ type: 'audit', action, epoch: this.#epoch, atWallMs: this.#clock.wallNow(), data });
  }

  #setState(to: CoordinatorStateValue): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#prom.state(to, Object.values(CoordinatorState));
    this.#log.info(`coordinator ${from} -> ${to}`, { epoch: this.#epoch });
    this.#emit({ type: 'state', from, to, epoch: this.#epoch });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    // The chain only orders the steps; each caller gets its own step's result or error.
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #step(phase: PhaseName): SequenceStep {
    return this.#sequence.find((x) => x.name === phase)!;
  }

  #timeout(phase: PhaseName): number {
    const step = this.#step(phase);
    if (step.timeoutMs !== undefined) return step.timeoutMs;
    if ('backend' in step) return this.#o.timeouts.backendMs;
    const t = this.#o.timeouts;
    const builtIn: Record<string, number> = {
      promote: t.promoteMs,
      vip: t.vipMs,
      backend: t.backendMs,
      onActive: t.onActiveMs,
    };
    return builtIn[phase] ?? 60_000;
  }

  async #runStep(phase: PhaseName, direction: Direction, ctx: PhaseContext): Promise<void> {
    const step = this.#step(phase);
    if ('backend' in step) {
      const backend = step.backend;
      if (direction === 'activate') {
        await backend.start();
        await waitHealthy(backend, ctx.signal, this.#clock, this.#o.healthIntervalMs);
      } else if (step.keepRunning) {
        this.#log.info('backend kept running (it runs on standbys too)', { epoch: ctx.epoch });
      } else {
        await backend.stop();
      }
      return;
    }
    await (direction === 'activate' ? step.activate(ctx) : step.deactivate(ctx));
  }

  async #phase(phase: PhaseName, direction: Direction, epoch: Epoch, reason?: string): Promise<PhaseTiming> {
    const t0 = this.#clock.now();
    const ac = new AbortController();
    const onClose = () => ac.abort(new ClosedError('active coordinator'));
    this.#abort.signal.addEventListener('abort', onClose, { once: true });
    const timeoutMs = this.#timeout(phase);
    let error: Error | undefined;
    try {
      await withTimeout(
        this.#runStep(phase, direction, { epoch, signal: ac.signal, reason }),
        timeoutMs,
        `${direction} phase ${phase}`,
        this.#clock,
      );
    } catch (err) {
      error = err as Error;
      ac.abort(err);
    } finally {
      this.#abort.signal.removeEventListener('abort', onClose);
    }
    const durationMs = this.#clock.now() - t0;
    const ok = !error;
    this.#log[ok ? 'info' : 'error'](`${direction} ${phase} ${ok ? 'done' : 'failed'}`, {
      epoch,
      durationMs,
      err: error,
    });
    this.#emit({
      type: 'phase',
      direction,
      phase,
      epoch,
      ok,
      durationMs,
      ...(error ? { error: error.message } : {}),
    });
    this.#prom.phase(phase, direction, ok, durationMs / 1000);
    this.#emit({
      type: 'metric',
      name: 'gc_phase_duration_ms',
      value: durationMs,
      labels: { phase, direction, ok: String(ok) },
    });
    this.#audit(`${direction}.${phase}`, {
      ok,
      durationMs,
      ...(error ? { error: error.message } : {}),
      ...(reason ? { reason } : {}),
    });
    return { phase, direction, ok, durationMs, error };
  }

  /** The report of a sequence that started at `t0` (clock ms) and ran `phases`. */
  #report(
    direction: Direction,
    epoch: Epoch,
    ok: boolean,
    t0: number,
    phases: PhaseTiming[],
  ): SequenceReport {
    return { direction, epoch, ok, totalMs: this.#clock.now() - t0, phases };
  }

  activate(epoch: Epoch): Promise<SequenceReport> {
    return this.#serial(async () => {
      if (this.#state === CoordinatorState.Closed) throw new ClosedError('active coordinator');
      this.#fence.check(epoch, 'activation');
      if (
        (this.#state === CoordinatorState.Active || this.#state === CoordinatorState.Degraded) &&
        this.#epoch === epoch
      ) {
        return this.#m.lastActivation!;
      }
      if (this.#state !== CoordinatorState.Passive)
        await this.#deactivateNow(`re-activation with epoch ${epoch}`);
      const t0 = this.#clock.now();
      this.#epoch = epoch;
      this.#done = [];
      this.#setState(CoordinatorState.Activating);
      this.#audit('activate.begin', {});
      const phases: PhaseTiming[] = [];
      for (const { name: phase } of this.#sequence) {
        const timing = await this.#phase(phase, 'activate', epoch);
        phases.push(timing);
        if (!timing.ok) {
          // A backend may be half-started: it is undone together with the phases that finished.
          if ('backend' in this.#step(phase)) this.#done.push(phase);
          this.#m.activationFailures++;
          for (const p of [...this.#done].reverse())
            phases.push(await this.#phase(p, 'deactivate', epoch, `activation failed in ${phase}`));
          this.#done = [];
          const report = this.#report('activate', epoch, false, t0, phases);
          this.#m.lastActivation = report;
          this.#audit('activate.failed', { phase, error: timing.error?.message, totalMs: report.totalMs });
          this.#epoch = undefined;
          this.#setState(CoordinatorState.Passive);
          throw new PhaseError(phase, 'activate', { cause: timing.error });
        }
        this.#done.push(phase);
      }
      const report = this.#report('activate', epoch, true, t0, phases);
      this.#m.activations++;
      this.#m.lastActivation = report;
      this.#emit({ type: 'metric', name: 'gc_activation_duration_ms', value: report.totalMs, labels: {} });
      this.#audit('activate.done', { totalMs: report.totalMs });
      this.#setState(CoordinatorState.Active);
      this.#watch?.start();
      return report;
    });
  }

  deactivate(reason = 'deactivate'): Promise<SequenceReport | undefined> {
    // Cut short a backend restart in progress: the node is giving up the active role anyway.
    this.#watch?.stop();
    return this.#serial(() => this.#deactivateNow(reason));
  }

  async #deactivateNow(reason: string): Promise<SequenceReport | undefined> {
    this.#watch?.stop();
    const epoch = this.#epoch;
    if (epoch === undefined || this.#done.length === 0) {
      this.#epoch = undefined;
      if (this.#state !== CoordinatorState.Closed) this.#setState(CoordinatorState.Passive);
      return undefined;
    }
    const t0 = this.#clock.now();
    this.#setState(CoordinatorState.Deactivating);
    this.#audit('deactivate.begin', { reason });
    const phases: PhaseTiming[] = [];
    for (const p of [...this.#done].reverse()) phases.push(await this.#phase(p, 'deactivate', epoch, reason));
    this.#done = [];
    const failed = phases.find((p) => !p.ok);
    const report = this.#report('deactivate', epoch, !failed, t0, phases);
    this.#m.lastDeactivation = report;
    if (failed) this.#m.deactivationFailures++;
    else this.#m.deactivations++;
    this.#emit({ type: 'metric', name: 'gc_deactivation_duration_ms', value: report.totalMs, labels: {} });
    this.#audit(failed ? 'deactivate.failed' : 'deactivate.done', {
      reason,
      totalMs: report.totalMs,
      ...(failed ? { phase: failed.phase } : {}),
    });
    this.#epoch = undefined;
    this.#setState(CoordinatorState.Passive);
    if (failed) throw new PhaseError(failed.phase, 'deactivate', { cause: failed.error });
    return report;
  }

  metrics(): CoordinatorMetrics {
    return { ...this.#m };
  }

  protected async closeResources(): Promise<void> {
    this.#watch?.stop();
    try {
      await this.deactivate('close');
    } finally {
      this.#abort.abort(new ClosedError('active coordinator'));
      this.#watch?.stop();
      this.#setState(CoordinatorState.Closed);
    }
  }
}

/**
 * Creates the coordinator of the active sequence from caller-supplied steps. The platform wires
 * election (epochs), `@gc/wal` (promote), `@gc/vip` and a backend into it.
 *
 * @example
 * const coordinator = createActiveCoordinator({
 *   steps: {
 *     promote: { activate: () => replica.promote(), deactivate: () => replica.demote() },
 *     vip: { activate: ({ epoch }) => vip.acquire(epoch).then(() => undefined), deactivate: () => vip.release('demoted') },
 *     backend,
 *     onActive: { activate: () => app.onActive(), deactivate: () => app.onPassive() },
 *   },
 *   onEvent: (e) => audit.publish(e),
 * });
 * election.onLeader((epoch) => coordinator.activate(epoch));
 * election.onFollower(() => coordinator.deactivate('lost leadership'));
 */
export function createActiveCoordinator(
  options: Partial<ActiveCoordinatorOptions> & Pick<ActiveCoordinatorOptions, 'steps'>,
): ActiveCoordinator {
  const d = defaultActiveCoordinatorOptions();
  return new Coordinator({
    ...d,
    ...options,
    timeouts: { ...d.timeouts, ...options.timeouts },
    backendRestart: { ...d.backendRestart, ...options.backendRestart },
  });
}
