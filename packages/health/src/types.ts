import type { Closable, Clock, Logger } from '@gc/core';

/** The state of one check or of the whole node. */
export const HealthState = {
  /** Not run yet. */
  Unknown: 'unknown',
  Healthy: 'healthy',
  /** A non-critical check fails: the node still serves. */
  Degraded: 'degraded',
  Unhealthy: 'unhealthy',
} as const;
/** One of {@link HealthState}. */
export type HealthState = (typeof HealthState)[keyof typeof HealthState];

/** What a check function returns: nothing or `true` means healthy; a string or `false` means unhealthy. */
export type CheckResult = void | boolean | string | { healthy: boolean; detail?: string };

/** A check: resolves when healthy; rejects or returns false/a string when not. Gets an abort signal at its timeout. */
export type CheckFn = (signal: AbortSignal) => CheckResult | Promise<CheckResult>;

/** Options of one registered check. */
export interface CheckOptions {
  /** How often the check runs, in ms. Default 10000. */
  intervalMs: number;
  /** A run that takes longer fails with a timeout, in ms. Default 2000. */
  timeoutMs: number;
  /** Checks this one depends on: while any of them is not healthy, this one is not run and reports `unhealthy` with the reason. */
  dependsOn: string[];
  /** A failing critical check makes the node unhealthy (and not ready); a non-critical one makes it degraded. Default true. */
  critical: boolean;
  /** Consecutive failures before the check is reported unhealthy (flap damping). Default 1. */
  failureThreshold: number;
  /** Counts toward readiness (`/ready`). Default true. */
  readiness: boolean;
}

/** The latest result of a check. */
export interface CheckStatus {
  name: string;
  state: HealthState;
  critical: boolean;
  /** Why it failed, or a detail the check returned. */
  detail?: string;
  /** Wall-clock ms of the last run. */
  lastRunAt?: number;
  /** Duration of the last run in ms. */
  durationMs?: number;
  consecutiveFailures: number;
  /** Recent results, newest last (bounded by `historySize`). */
  history: Array<{ at: number; state: HealthState; durationMs: number; detail?: string }>;
}

/** The aggregate health of the node. */
export interface HealthReport {
  state: HealthState;
  ready: boolean;
  checks: CheckStatus[];
}

/** A change of one check's state. */
export interface HealthChange {
  check: string;
  from: HealthState;
  to: HealthState;
  detail?: string;
  /** The aggregate state after the change. */
  overall: HealthState;
}

/** Options of {@link createHealth}. */
export interface HealthOptions {
  /** Time source. Default realClock. */
  clock: Clock;
  /** Logger. Default silent. */
  logger: Logger;
  /** Results kept per check. Default 20. */
  historySize: number;
}

/** A set of health checks that run on their own intervals. */
export interface Health extends Closable {
  /** Registers a check and starts running it. Throws when the name is taken or a dependency forms a cycle. */
  register(name: string, fn: CheckFn, opts?: Partial<CheckOptions>): void;
  /** Removes a check. */
  unregister(name: string): void;
  /** Runs every check now (respecting dependencies) and returns the report. */
  runAll(): Promise<HealthReport>;
  /** The latest report without running anything. */
  report(): HealthReport;
  /** Calls `fn` on every state change of a check; returns an unsubscribe function. */
  onChange(fn: (change: HealthChange) => void): () => void;
  /** Stops every timer and waits for the checks running now. Idempotent. */
  close(): Promise<void>;
}
