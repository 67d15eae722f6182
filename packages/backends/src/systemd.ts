import { existsSync, readFileSync } from 'node:fs';
import { ClosedError } from '@gc/core';
import { BuiltinBackend } from './base.js';
import { defineBackend } from './define.js';
import { BackendError, BackendErrorCode, CommandFailedError } from './errors.js';
import { runTool, type ExecResult } from './exec.js';
import { probe } from './health.js';
import {
  classifySystemctlError,
  journalctlArgs,
  normalizeUnit,
  parseShow,
  systemctlIsActiveArgs,
  systemctlKillArgs,
  systemctlResetFailedArgs,
  systemctlShowArgs,
  systemctlVerbArgs,
  type UnitInfo,
} from './systemd-args.js';
import {
  BackendState,
  type Backend,
  type BackendContext,
  type BackendStatus,
  type HealthCheck,
  type HealthResult,
  type LogsOptions,
} from './types.js';

/** Options of the `systemd` backend. */
export interface SystemdBackendOptions {
  /** Unit to control, for example `convex-backend` (`.service` is added when no suffix is given). Required. */
  unit: string;
  /** Use the user's service manager (`systemctl --user`). Default `false`. */
  user: boolean;
  /**
   * The unit is `Type=notify`: start waits until the service sent `READY=1` (systemd keeps it
   * `activating` until then), and a unit of another type is reported at start. Default `false`.
   */
  notify: boolean;
  /** How long start waits for `active` and healthy, in ms. Default `60000`. */
  startTimeoutMs: number;
  /** How long stop waits for `inactive` before `systemctl kill --signal=SIGKILL`, in ms. Default `30000`. */
  stopTimeoutMs: number;
  /** Extra health check on top of `ActiveState=active`. Default `{ type: 'none' }`. */
  health: HealthCheck;
  /** Poll interval while waiting for a state, in ms. Default `250`. */
  pollIntervalMs: number;
  /** Time limit of one systemctl/journalctl call, in ms. Default `10000`. */
  commandTimeoutMs: number;
  /** Program names or paths. Default `{ systemctl: 'systemctl', journalctl: 'journalctl' }`. */
  commands: { systemctl: string; journalctl: string };
  /** Environment of the tools (PATH). Default `process.env`. */
  env: NodeJS.ProcessEnv | undefined;
  /** Directory whose existence means systemd is PID 1 (`sd_booted()`). Default `/run/systemd/system`. */
  bootedMarker: string;
}

/** Defaults of {@link SystemdBackendOptions} (`unit` must be given). */
export function defaultSystemdBackendOptions(): SystemdBackendOptions {
  return {
    unit: '',
    user: false,
    notify: false,
    startTimeoutMs: 60_000,
    stopTimeoutMs: 30_000,
    health: { type: 'none' },
    pollIntervalMs: 250,
    commandTimeoutMs: 10_000,
    commands: { systemctl: 'systemctl', journalctl: 'journalctl' },
    env: undefined,
    bootedMarker: '/run/systemd/system',
  };
}

const SYSTEMCTL_HINT =
  'the systemd backend needs systemd (apt-get install -y systemd on a host booted with systemd), or use the process or docker backend';

function pid1Name(): string {
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Why the systemd backend cannot work on this host (systemd is not PID 1), or undefined when it
 * can. The same test as `sd_booted()`.
 */
export function systemdUnavailableReason(marker = '/run/systemd/system'): string | undefined {
  if (existsSync(marker)) return undefined;
  return `systemd is not the init system here (PID 1 is ${JSON.stringify(pid1Name())}, ${marker} does not exist)`;
}

class SystemdBackend extends BuiltinBackend implements Backend {
  readonly kind = 'systemd';
  readonly #o: SystemdBackendOptions;
  readonly #unit: string;
  #startRestarts = 0;
  #last: UnitInfo | undefined;

  constructor(o: SystemdBackendOptions, ctx: BackendContext) {
    if (!o.unit)
      throw new BackendError(
        BackendErrorCode.StartFailed,
        'systemd backend needs options.unit (the unit to control)',
      );
    const unit = normalizeUnit(o.unit);
    super('systemd', ctx, { unit });
    this.#o = o;
    this.#unit = unit;
  }

  #scope() {
    return { user: this.#o.user };
  }

  async #tool(which: 'systemctl' | 'journalctl', args: string[]): Promise<ExecResult> {
    const reason = systemdUnavailableReason(this.#o.bootedMarker);
    // Run it even then: a missing binary is reported as such first. Without systemd as PID 1
    // every answer is meaningless (journalctl even exits 0 with nothing), so refuse it.
    const r = await runTool(this.#o.commands[which], args, {
      timeoutMs: this.#o.commandTimeoutMs,
      env: this.#o.env,
      missingHint: SYSTEMCTL_HINT,
    });
    if (reason) throw this.#unavailable(reason, r);
    return r;
  }

  #unavailable(reason: string, r?: ExecResult): CommandFailedError {
    return new CommandFailedError(
      BackendErrorCode.SystemdUnavailable,
      `cannot control ${this.#unit}: ${reason}${r?.stderr.trim() ? ` (${r.command}: ${r.stderr.trim()})` : ''}. Run gc on a systemd host, or use the process or docker backend`,
      { command: r?.command ?? '', exitCode: r?.exitCode ?? null, stderr: r?.stderr.trim() ?? '' },
    );
  }

  #failure(r: ExecResult, what: string): CommandFailedError {
    const stderr = r.stderr.trim();
    const detail = { command: r.command, exitCode: r.exitCode, stderr };
    switch (classifySystemctlError(stderr)) {
      case 'no-systemd':
        return this.#unavailable('systemd is not reachable', r);
      case 'not-found':
        return this.#notFound(r);
      case 'permission':
        return new CommandFailedError(
          BackendErrorCode.CommandFailed,
          `${what} ${this.#unit} was refused: ${stderr}. Run gc as root, use a user unit (user: true), or allow it with a polkit rule`,
          detail,
        );
      default:
        return new CommandFailedError(
          BackendErrorCode.CommandFailed,
          `${what} ${this.#unit} failed (exit ${r.exitCode}): ${stderr}`,
          detail,
        );
    }
  }

  #notFound(r: ExecResult): CommandFailedError {
    return new CommandFailedError(
      BackendErrorCode.UnitNotFound,
      `unit ${this.#unit} does not exist${this.#o.user ? ' in the user manager' : ''}: install its unit file (for example /etc/systemd/system/${this.#unit}) and run systemctl daemon-reload, or fix options.unit (systemctl list-unit-files lists the known units)`,
      { command: r.command, exitCode: r.exitCode, stderr: r.stderr.trim() },
    );
  }

  /** Reads the unit; throws UnitNotFound for a unit systemd does not know. */
  async show(): Promise<UnitInfo> {
    const r = await this.#tool('systemctl', systemctlShowArgs(this.#scope(), this.#unit));
    if (r.exitCode !== 0) throw this.#failure(r, 'reading');
    const info = parseShow(r.stdout);
    if (info.loadState === 'not-found' || info.loadState === 'masked') throw this.#notFound(r);
    this.#last = info;
    return info;
  }

  async #verb(verb: 'start' | 'stop' | 'restart'): Promise<void> {
    const r = await this.#tool('systemctl', systemctlVerbArgs(this.#scope(), verb, this.#unit));
    if (r.exitCode !== 0)
      throw this.#failure(
        r,
        `${verb === 'stop' ? 'stopping' : verb === 'start' ? 'starting' : 'restarting'}`,
      );
  }

  async start(): Promise<void> {
    if (this.closed) throw new ClosedError(`backend ${this.name}`);
    const before = await this.show();
    if (before.activeState === 'active' && this.state === BackendState.Running) return;
    await this.#launch('start', before);
  }

  /** `systemctl restart` and wait for active and healthy again (the coordinator's restart path). */
  async restart(): Promise<void> {
    if (this.closed) throw new ClosedError(`backend ${this.name}`);
    await this.#launch('restart', await this.show());
  }

  async #launch(verb: 'start' | 'restart', before: UnitInfo): Promise<void> {
    if (this.#o.notify && before.type && before.type !== 'notify') {
      this.log.warn(
        `options.notify is set but ${this.#unit} has Type=${before.type}; start waits for active only`,
      );
    }
    this.#startRestarts = before.restarts;
    this.setState(BackendState.Starting);
    // A unit left failed by an earlier run would read as "failed" before the new job runs.
    if (before.activeState === 'failed') {
      const r = await this.#tool('systemctl', systemctlResetFailedArgs(this.#scope(), this.#unit));
      if (r.exitCode !== 0) throw this.#failure(r, 'resetting');
    }
    if (verb === 'restart' || before.activeState !== 'active') await this.#verb(verb);
    await this.pollUntilReady(
      this.#o.startTimeoutMs,
      this.#o.pollIntervalMs,
      async () => {
        const info = await this.show();
        if (info.activeState === 'active') {
          const h = await this.health();
          return h.healthy || h.detail;
        }
        if (info.activeState === 'failed') {
          throw await this.failStart(
            `unit ${this.#unit} failed to start (result ${info.result}, exit status ${info.execMainStatus}). journalctl says:`,
          );
        }
        // A Type=notify unit stays activating until it sends READY=1.
        return `${info.activeState}/${info.subState}`;
      },
      (last) =>
        `unit ${this.#unit} was not active and healthy within ${this.#o.startTimeoutMs} ms (last: ${last})${this.#o.notify ? '; a Type=notify unit must send READY=1' : ''}`,
    );
    this.log.info('unit active', { pid: this.#last?.mainPid });
    this.emit({ type: 'started', backend: this.name, pid: this.#last?.mainPid });
    this.setState(BackendState.Running);
  }

  async stop(): Promise<void> {
    const t0 = this.clock.now();
    const info = await this.show();
    if (info.activeState === 'inactive' || info.activeState === 'failed') {
      this.setState(BackendState.Stopped);
      return;
    }
    this.setState(BackendState.Stopping);
    await this.#verb('stop');
    let escalated = false;
    const deadline = t0 + this.#o.stopTimeoutMs;
    for (;;) {
      const now = await this.show();
      if (now.activeState === 'inactive' || now.activeState === 'failed') break;
      if (this.clock.now() >= deadline) {
        if (escalated) {
          throw new BackendError(
            BackendErrorCode.StopFailed,
            `unit ${this.#unit} is still ${now.activeState} after SIGKILL; check systemctl status ${this.#unit}`,
          );
        }
        escalated = true;
        this.log.warn('stop timeout: SIGKILL to the unit', { stopTimeoutMs: this.#o.stopTimeoutMs });
        const r = await this.#tool('systemctl', systemctlKillArgs(this.#scope(), this.#unit, 'SIGKILL'));
        if (r.exitCode !== 0) throw this.#failure(r, 'killing');
      }
      await this.clock.sleep(this.#o.pollIntervalMs);
    }
    this.emit({ type: 'stopped', backend: this.name, escalated, durationMs: this.clock.now() - t0 });
    this.setState(BackendState.Stopped);
  }

  async health(): Promise<HealthResult> {
    const t0 = performance.now();
    const r = await this.#tool('systemctl', systemctlIsActiveArgs(this.#scope(), this.#unit));
    // is-active prints the state and exits 0 only for active (3 for inactive, failed, unknown units).
    const state = r.stdout.trim() || 'unknown';
    if (r.exitCode !== 0 || state !== 'active') {
      return { healthy: false, detail: `unit ${state}`, latencyMs: performance.now() - t0 };
    }
    return probe(this.#o.health);
  }

  async status(): Promise<BackendStatus> {
    const info = await this.show();
    return {
      kind: this.kind,
      state: this.state,
      pid: info.mainPid,
      exitCode: info.execMainStatus,
      signal: undefined,
      restarts: Math.max(0, info.restarts - this.#startRestarts),
      sinceWallMs: this.sinceWallMs,
      detail: {
        unit: this.#unit,
        activeState: info.activeState,
        subState: info.subState,
        type: info.type,
        result: info.result,
      },
    };
  }

  async logs(opts: LogsOptions = {}): Promise<string[]> {
    const r = await this.#tool('journalctl', journalctlArgs(this.#scope(), this.#unit, opts.lines ?? 100));
    if (r.exitCode !== 0) throw this.#failure(r, 'reading the journal of');
    return r.stdout.split('\n').filter((l) => l !== '');
  }
}

/**
 * The `systemd` backend: controls an installed unit with `systemctl` (start/stop/restart,
 * is-active, show) and reads its logs with `journalctl`. Needs systemd as PID 1.
 *
 * @example
 * const backend = await systemdBackend.create({ unit: 'convex-backend', notify: true, health: { type: 'http', url: 'http://127.0.0.1:3210/version' } });
 * await backend.start();
 */
export const systemdBackend = defineBackend<SystemdBackendOptions>({
  name: 'systemd',
  options: defaultSystemdBackendOptions,
  factory: (options, context) => new SystemdBackend(options, context),
});
