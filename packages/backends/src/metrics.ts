import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the active coordinator records (no-ops without a registry). */
export interface CoordinatorPromMetrics {
  phase(phase: string, direction: string, ok: boolean, seconds: number): void;
  state(state: string, all: readonly string[]): void;
  backendRestart(ok: boolean): void;
  backendFailed(): void;
}

const noop: CoordinatorPromMetrics = {
  phase: () => undefined,
  state: () => undefined,
  backendRestart: () => undefined,
  backendFailed: () => undefined,
};

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Metrics on `registry` (shared by every coordinator in the process, told apart by `app`):
 * - `gc_active_phase_seconds{app,phase,direction,ok}`: duration of each phase of the active and
 *   passive sequences;
 * - `gc_active_state{app,state}`: 1 for the coordinator's current state, 0 for the others;
 * - `gc_backend_restarts_total{app,ok}`: restarts of an unhealthy backend while active;
 * - `gc_backend_failures_total{app}`: times the backend stayed unhealthy past its restart limit.
 */
export function coordinatorMetrics(registry: Registry | undefined, app: string): CoordinatorPromMetrics {
  if (!registry) return noop;
  const phase = getOrCreate(
    registry,
    'gc_active_phase_seconds',
    () =>
      new Histogram({
        name: 'gc_active_phase_seconds',
        help: 'Duration of the phases of the active and passive sequences',
        labelNames: ['app', 'phase', 'direction', 'ok'],
        buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
        registers: [registry],
      }),
  );
  const state = getOrCreate(
    registry,
    'gc_active_state',
    () =>
      new Gauge({
        name: 'gc_active_state',
        help: 'State of the active coordinator (1 for the current state)',
        labelNames: ['app', 'state'],
        registers: [registry],
      }),
  );
  const restarts = getOrCreate(
    registry,
    'gc_backend_restarts_total',
    () =>
      new Counter({
        name: 'gc_backend_restarts_total',
        help: 'Restarts of an unhealthy backend while active',
        labelNames: ['app', 'ok'],
        registers: [registry],
      }),
  );
  const failures = getOrCreate(
    registry,
    'gc_backend_failures_total',
    () =>
      new Counter({
        name: 'gc_backend_failures_total',
        help: 'Times the backend stayed unhealthy past its restart limit',
        labelNames: ['app'],
        registers: [registry],
      }),
  );
  return {
    phase: (p, direction, ok, seconds) =>
      phase.observe({ app, phase: p, direction, ok: String(ok) }, seconds),
    state: (s, all) => {
      for (const v of all) state.set({ app, state: v }, v === s ? 1 : 0);
    },
    backendRestart: (ok) => restarts.inc({ app, ok: String(ok) }),
    backendFailed: () => failures.inc({ app }),
  };
}
