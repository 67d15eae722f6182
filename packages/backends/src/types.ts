import type { Clock, Logger } from '@gc/core';

/** Lifecycle states every backend reports. */
export const BackendState = {
  Stopped: 'stopped',
  Starting: 'starting',
  Running: 'running',
  Restarting: 'restarting',
  Stopping: 'stopping',
  Failed: 'failed',
} as const;
/** One of the states in {@link BackendState}. */
export type BackendStateValue = (typeof BackendState)[keyof typeof BackendState];

/** What {@link Backend.status} returns. */
export interface BackendStatus {
  /** Backend kind (`process`, `systemd`, `docker`, or a plugin's name). */
  kind: string;
  /** Lifecycle state. */
  state: BackendStateValue;
  /** PID of the main process when known and running. */
  pid: number | undefined;
  /** Exit code of the last run, when it has exited. */
  exitCode: number | null | undefined;
  /** Signal that ended the last run, when it was killed. */
  signal: string | null | undefined;
  /** Restarts done by the backend's own restart policy since the last start(). */
  restarts: number;
  /** Wall-clock ms of the last state change. */
  sinceWallMs: number;
  /** Kind-specific detail (unit state, container status, ...). */
  detail: Record<string, unknown>;
}

/** What one health probe found. */
export interface HealthResult {
  healthy: boolean;
  /** Human-readable reason, for example `HTTP 200` or `ECONNREFUSED`. */
  detail: string;
  /** How long the probe took, in ms. */
  latencyMs: number;
}

/** Health probe configuration shared by the built-in backends. */
export type HealthCheck =
  | { type: 'none' }
  | {
      type: 'http';
      /** URL to GET, for example `http://127.0.0.1:3210/version`. */
      url: string;
      /** Lowest healthy status. Default 200. */
      minStatus?: number;
      /** Highest healthy status. Default 399. */
      maxStatus?: number;
      /** Probe time limit in ms. Default 2000. */
      timeoutMs?: number;
    }
  | {
      type: 'tcp';
      /** Host to connect to. Default `127.0.0.1`. */
      host?: string;
      port: number;
      /** Probe time limit in ms. Default 2000. */
      timeoutMs?: number;
    };

/** Options of {@link Backend.logs}. */
export interface LogsOptions {
  /** Most recent lines to return. Default 100. */
  lines?: number;
}

/** What backends report through their `onEvent` listener. */
export type BackendEvent =
  | { type: 'state'; backend: string; from: BackendStateValue; to: BackendStateValue }
  | { type: 'started'; backend: string; pid: number | undefined }
  | {
      type: 'exited';
      backend: string;
      pid: number | undefined;
      exitCode: number | null;
      signal: string | null;
    }
  | { type: 'restarting'; backend: string; attempt: number; delayMs: number }
  | { type: 'gave-up'; backend: string; restarts: number; reason: string }
  | { type: 'stopped'; backend: string; escalated: boolean; durationMs: number }
  | { type: 'log'; backend: string; stream: 'stdout' | 'stderr'; line: string };

/**
 * The contract every backend implements: the real service the active node runs (a process, a
 * systemd unit, a container, or anything a plugin adds).
 */
export interface Backend {
  /** Instance name (used in logs, events and default resource names). */
  readonly name: string;
  /** Backend kind (`process`, `systemd`, `docker`, or a plugin's name). */
  readonly kind: string;
  /** Starts the service and resolves once it is running and (when a check is configured) healthy. Idempotent. */
  start(): Promise<void>;
  /** Stops the service (gracefully, then forcibly after the configured grace). Idempotent. */
  stop(): Promise<void>;
  /**
   * Restarts the service and resolves once it is healthy again. Optional: without it the
   * coordinator restarts with stop() then start().
   */
  restart?(): Promise<void>;
  /** Probes health once. */
  health(): Promise<HealthResult>;
  /** Current status. */
  status(): Promise<BackendStatus>;
  /** Most recent log lines of the service. */
  logs(opts?: LogsOptions): Promise<string[]>;
  /** Stops the service and releases timers and handles. Idempotent; nothing keeps the process alive afterwards. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What the host gives a backend factory. */
export interface BackendContext {
  /** Instance name (logs, events, default unit/container names). Default the kind name. */
  name: string;
  /** Logger; the backend writes the service's output and its own actions here. Default silent. */
  logger: Logger;
  /** Clock for backoff and timeouts. Default the real clock. */
  clock: Clock;
  /** Receives backend events. Default none. */
  onEvent: (event: BackendEvent) => void;
}
