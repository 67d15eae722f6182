import { sharedCounter, sharedGauge, sharedHistogram } from '@gc/core';
import type { Registry } from 'prom-client';

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
  const phase = sharedHistogram(
    registry,
    'gc_active_phase_seconds',
    'Duration of the phases of the active and passive sequences',
    ['app', 'phase', 'direction', 'ok'],
    [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
  );
  const state = sharedGauge(
    registry,
    'gc_active_state',
    'State of the active coordinator (1 for the current state)',
    ['app', 'state'],
  );
  const restarts = sharedCounter(
    registry,
    'gc_backend_restarts_total',
    'Restarts of an unhealthy backend while active',
    ['app', 'ok'],
  );
  const failures = sharedCounter(
    registry,
    'gc_backend_failures_total',
    'Times the backend stayed unhealthy past its restart limit',
    ['app'],
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
