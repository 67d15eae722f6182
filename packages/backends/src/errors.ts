import { causeSuffix, GcError } from '@gc/core';

/** Stable error codes of `@gc/backends`. A code never changes meaning once released. */
export const BackendErrorCode = {
  ToolMissing: 'GC_BACKEND_TOOL_MISSING',
  SystemdUnavailable: 'GC_BACKEND_SYSTEMD_UNAVAILABLE',
  DockerUnavailable: 'GC_BACKEND_DOCKER_UNAVAILABLE',
  UnitNotFound: 'GC_BACKEND_UNIT_NOT_FOUND',
  PortInUse: 'GC_BACKEND_PORT_IN_USE',
  SpawnFailed: 'GC_BACKEND_SPAWN_FAILED',
  StartFailed: 'GC_BACKEND_START_FAILED',
  StopFailed: 'GC_BACKEND_STOP_FAILED',
  CommandFailed: 'GC_BACKEND_COMMAND_FAILED',
  Unhealthy: 'GC_BACKEND_UNHEALTHY',
  LoadFailed: 'GC_BACKEND_LOAD_FAILED',
  PhaseFailed: 'GC_BACKEND_PHASE_FAILED',
} as const;
/** One of the codes in {@link BackendErrorCode}. */
export type BackendErrorCodeValue = (typeof BackendErrorCode)[keyof typeof BackendErrorCode];

/** Base class of the errors `@gc/backends` throws; `code` is one of {@link BackendErrorCode}. */
export class BackendError extends GcError {
  constructor(code: BackendErrorCodeValue, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'BackendError';
  }
}

/** A required program (`systemctl`, `journalctl`, `docker`, the process backend's command) is not on PATH. */
export class ToolMissingError extends BackendError {
  /** The program that was not found. */
  readonly tool: string;

  constructor(tool: string, hint: string, options?: ErrorOptions) {
    super(BackendErrorCode.ToolMissing, `the \`${tool}\` command was not found on PATH: ${hint}`, options);
    this.name = 'ToolMissingError';
    this.tool = tool;
  }
}

/** A port the backend needs is already bound by another process. */
export class PortInUseError extends BackendError {
  /** The port. */
  readonly port: number;
  /** The host address checked. */
  readonly host: string;
  /** PID of a process holding it, when it could be found in /proc. */
  readonly holderPid: number | undefined;

  constructor(host: string, port: number, what: string, holderPid?: number, options?: ErrorOptions) {
    super(
      BackendErrorCode.PortInUse,
      `port ${port} on ${host} needed by ${what} is already in use${holderPid ? ` by pid ${holderPid}` : ''}: stop whatever listens there (ss -ltnp 'sport = :${port}') or configure another port`,
      options,
    );
    this.name = 'PortInUseError';
    this.port = port;
    this.host = host;
    this.holderPid = holderPid;
  }
}

/** An external command (`systemctl`, `docker`, ...) failed; `stderr` holds what it said. */
export class CommandFailedError extends BackendError {
  /** The command line. */
  readonly command: string;
  /** Exit code, or null when it was killed. */
  readonly exitCode: number | null;
  /** Trimmed stderr of the command. */
  readonly stderr: string;

  constructor(
    code: BackendErrorCodeValue,
    message: string,
    detail: { command: string; exitCode: number | null; stderr: string },
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'CommandFailedError';
    this.command = detail.command;
    this.exitCode = detail.exitCode;
    this.stderr = detail.stderr;
  }
}

/** A backend package could not be loaded or does not export a backend. Names the package. */
export class BackendLoadError extends BackendError {
  /** The package (or built-in name) that was asked for. */
  readonly packageName: string;

  constructor(packageName: string, message: string, options?: ErrorOptions) {
    super(
      BackendErrorCode.LoadFailed,
      `cannot load backend ${JSON.stringify(packageName)}: ${message}`,
      options,
    );
    this.name = 'BackendLoadError';
    this.packageName = packageName;
  }
}

/** A phase of the active or passive sequence failed; `phase` names it, `cause` says why. */
export class PhaseError extends BackendError {
  /** The phase that failed, for example `vip`. */
  readonly phase: string;

  constructor(phase: string, direction: 'activate' | 'deactivate', options?: ErrorOptions) {
    super(
      BackendErrorCode.PhaseFailed,
      `${direction} phase ${JSON.stringify(phase)} failed${causeSuffix(options)}`,
      options,
    );
    this.name = 'PhaseError';
    this.phase = phase;
  }
}
