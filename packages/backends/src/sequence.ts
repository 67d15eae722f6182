// The active sequence's vocabulary: phases, steps, options and their defaults, states, events, and the
// interface of the coordinator that runs it (coordinator.ts).
import type { Closable, Clock, Epoch, Fence, Logger } from '@gc/core';
import type { Registry } from 'prom-client';
import type { RestartPolicy } from './restart.js';
import type { Backend } from './types.js';

/** The phases of the active sequence, in order. The passive sequence runs them in reverse. */
export const Phase = {
  Promote: 'promote',
  Vip: 'vip',
  Backend: 'backend',
  OnActive: 'onActive',
} as const;
/**
 * Name of a step of the active sequence: one of {@link Phase} for the built-in steps, or the name of a
 * step given in {@link ActiveCoordinatorOptions.sequence}.
 */
export type PhaseName = (typeof Phase)[keyof typeof Phase] | (string & {});

/** Which way a phase runs. */
export type Direction = 'activate' | 'deactivate';

/** What each step receives. */
export interface PhaseContext {
  /** The leadership epoch being activated (or given up). */
  epoch: Epoch;
  /** Aborted when the phase runs out of time or the coordinator closes. */
  signal: AbortSignal;
  /** Why the node deactivates (`deactivate` only). */
  reason: string | undefined;
}

/** One caller-supplied step: what to do on the way up and on the way down. */
export interface ActiveStep {
  activate(ctx: PhaseContext): Promise<void>;
  deactivate(ctx: PhaseContext): Promise<void>;
}

/**
 * One named step of an ordered sequence: a plain step, or a backend (started and waited healthy on the way
 * up, stopped on the way down, watched and restarted while active). At most one backend per sequence.
 */
export type SequenceStep = { name: string; timeoutMs?: number } & (
  | { activate(ctx: PhaseContext): Promise<void>; deactivate(ctx: PhaseContext): Promise<void> }
  | {
      backend: Backend;
      /**
       * The backend runs on standbys too (started when the app starts, see the platform's `backendRuns:
       * 'always'`): activation only waits for it to be healthy (starting it if it stopped), and deactivation
       * leaves it running.
       */
      keepRunning?: boolean;
    }
);

/** The steps the platform composes. Each is optional; missing ones are skipped (and not reported). */
export interface ActiveSteps {
  /** Catch up and promote the data (for example `@gc/wal` promotion); down: demote to replica. */
  promote?: ActiveStep;
  /** Acquire the virtual IP (for example `@gc/vip`); down: release it. */
  vip?: ActiveStep;
  /** Started and waited healthy on the way up, stopped on the way down, watched while active. */
  backend?: Backend;
  /** The app's onActive hook; down: its onPassive hook. */
  onActive?: ActiveStep;
}

/** Time limit of each phase (both directions), in ms. */
export interface PhaseTimeouts {
  /** Default `120000`. */
  promoteMs: number;
  /** Default `15000`. */
  vipMs: number;
  /** Start plus first healthy probe. Default `60000`. */
  backendMs: number;
  /** Default `30000`. */
  onActiveMs: number;
}

/** Options of {@link createActiveCoordinator}. */
export interface ActiveCoordinatorOptions {
  /** The four built-in steps, run as promote → vip → backend → onActive. Either this or `sequence`. */
  steps: ActiveSteps;
  /**
   * Any steps, in order (the passive sequence runs them in reverse). Each step's `timeoutMs` overrides
   * `timeouts` (which also applies to steps named like the built-ins); other steps default to 60000 ms.
   * When given, `steps` is ignored.
   */
  sequence: SequenceStep[] | undefined;
  /** Per-phase time limits. */
  timeouts: PhaseTimeouts;
  /** Backend health probe interval while active, in ms. Default `2000`. */
  healthIntervalMs: number;
  /** Consecutive failed probes before the backend is restarted. Default `3`. */
  unhealthyThreshold: number;
  /** Limits of restarts of an unhealthy backend while active (mode is ignored: unhealthy always counts). */
  backendRestart: RestartPolicy;
  /** Refuses an activation with an epoch lower than one already seen. Default a new in-memory fence. */
  fence: Fence | undefined;
  /** Name used as the `app` label of the Prometheus metrics and in logs. Default `default`. */
  name: string;
  /** prom-client registry for `gc_active_phase_seconds`, `gc_active_state`, `gc_backend_restarts_total`, `gc_backend_failures_total`. Default none. */
  registry: Registry | undefined;
  /** Receives state changes, phase timings, metrics and audit events. Default none. */
  onEvent: ((event: CoordinatorEvent) => void) | undefined;
  /** Clock. Default the real clock. */
  clock: Clock | undefined;
  /** Logger. Default silent. */
  logger: Logger | undefined;
}

/** Defaults of {@link ActiveCoordinatorOptions} (`steps` must be given). */
export function defaultActiveCoordinatorOptions(): Omit<ActiveCoordinatorOptions, 'steps'> {
  return {
    timeouts: { promoteMs: 120_000, vipMs: 15_000, backendMs: 60_000, onActiveMs: 30_000 },
    healthIntervalMs: 2000,
    unhealthyThreshold: 3,
    backendRestart: {
      mode: 'always',
      maxRestarts: 3,
      windowMs: 300_000,
      initialBackoffMs: 1000,
      maxBackoffMs: 30_000,
      factor: 2,
    },
    sequence: undefined,
    fence: undefined,
    name: 'default',
    registry: undefined,
    onEvent: undefined,
    clock: undefined,
    logger: undefined,
  };
}

/** States of the coordinator. `degraded`: active, but the backend failed beyond its restart limits. */
export const CoordinatorState = {
  Passive: 'passive',
  Activating: 'activating',
  Active: 'active',
  Degraded: 'degraded',
  Deactivating: 'deactivating',
  Closed: 'closed',
} as const;
/** One of {@link CoordinatorState}. */
export type CoordinatorStateValue = (typeof CoordinatorState)[keyof typeof CoordinatorState];

/** Timing of one phase run. */
export interface PhaseTiming {
  phase: PhaseName;
  direction: Direction;
  ok: boolean;
  durationMs: number;
  error: Error | undefined;
}

/** What {@link ActiveCoordinator.activate} and {@link ActiveCoordinator.deactivate} return. */
export interface SequenceReport {
  direction: Direction;
  epoch: Epoch;
  ok: boolean;
  totalMs: number;
  phases: PhaseTiming[];
}

/** Everything the coordinator reports. */
export type CoordinatorEvent =
  | { type: 'state'; from: CoordinatorStateValue; to: CoordinatorStateValue; epoch: Epoch | undefined }
  | {
      type: 'phase';
      direction: Direction;
      phase: PhaseName;
      epoch: Epoch;
      ok: boolean;
      durationMs: number;
      error?: string;
    }
  | { type: 'backend-unhealthy'; epoch: Epoch; consecutive: number; detail: string }
  | {
      type: 'backend-restart';
      epoch: Epoch;
      attempt: number;
      delayMs: number;
      ok: boolean;
      durationMs: number;
      error?: string;
    }
  | { type: 'backend-failed'; epoch: Epoch; reason: string }
  | { type: 'metric'; name: string; value: number; labels: Record<string, string> }
  | {
      type: 'audit';
      action: string;
      epoch: Epoch | undefined;
      atWallMs: number;
      data: Record<string, unknown>;
    };

/** Counters and last timings, for a status page. */
export interface CoordinatorMetrics {
  activations: number;
  activationFailures: number;
  deactivations: number;
  deactivationFailures: number;
  backendRestarts: number;
  backendFailures: number;
  lastActivation: SequenceReport | undefined;
  lastDeactivation: SequenceReport | undefined;
}

/** Runs the active sequence and its reverse, and keeps the backend healthy while active. */
export interface ActiveCoordinator extends Closable {
  /** Current state. */
  readonly state: CoordinatorStateValue;
  /** The epoch of the current activation, if any. */
  readonly epoch: Epoch | undefined;
  /**
   * promote → vip → backend healthy → onActive, each timed and bounded. On a failure the phases
   * already done are undone in reverse and a {@link PhaseError} naming the phase is thrown.
   * Refused with `FencedError` for an epoch lower than one already seen.
   */
  activate(epoch: Epoch): Promise<SequenceReport>;
  /**
   * onPassive → backend stop → vip release → demote. Every phase runs even when an earlier one
   * fails (the VIP is released even when the backend will not stop); the first failure is thrown
   * as a {@link PhaseError} afterwards. A no-op when passive.
   */
  deactivate(reason?: string): Promise<SequenceReport | undefined>;
  /** Counters and last timings. */
  metrics(): CoordinatorMetrics;
  /** Deactivates (reason `close`) and stops the health watch. Idempotent. */
  close(): Promise<void>;
}
