import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { ClosedError, type TimerHandle } from '@gc/core';
import { BuiltinBackend } from './base.js';
import { defineBackend } from './define.js';
import { BackendError, BackendErrorCode, ToolMissingError } from './errors.js';
import { healthEndpoint, probe } from './health.js';
import { assertPortFree } from './ports.js';
import { processGroupMembers } from './procfs.js';
import { defaultRestartPolicy, restartDecision, type RestartPolicy } from './restart.js';
import {
  BackendState,
  type Backend,
  type BackendContext,
  type BackendStatus,
  type HealthCheck,
  type HealthResult,
  type LogsOptions,
} from './types.js';

/** Options of the `process` backend. */
export interface ProcessBackendOptions {
  /** Program to run (a path, or a name looked up on PATH). Required. */
  command: string;
  /** Arguments. Default `[]`. */
  args: string[];
  /** Extra environment variables. Default `{}`. */
  env: Record<string, string>;
  /** Start from this process's environment (then add `env`). Default `true`. */
  inheritEnv: boolean;
  /** Working directory. Default the current one. */
  cwd: string | undefined;
  /** Time between SIGTERM and SIGKILL to the whole process group on stop, in ms. Default `5000`. */
  graceMs: number;
  /** Also append the service's stdout and stderr to this file. Default none. */
  logFile: string | undefined;
  /** Lines of output kept in memory for {@link Backend.logs}. Default `1000`. */
  logBufferLines: number;
  /** Restart policy after the process exits on its own. */
  restart: RestartPolicy;
  /** Health check. Default `{ type: 'none' }` (running counts as healthy). */
  health: HealthCheck;
  /** How long start() waits for the first healthy probe, in ms. Default `30000`. */
  startTimeoutMs: number;
  /** Probe interval while waiting for health, in ms. Default `200`. */
  healthIntervalMs: number;
  /** Refuse to start when the health check's port is already bound by another process. Default `true`. */
  checkPort: boolean;
  /** SIGKILL the process group if this Node process exits while the service runs. Default `true`. */
  killOnExit: boolean;
}

/** Defaults of {@link ProcessBackendOptions} (`command` must be given). */
export function defaultProcessBackendOptions(): ProcessBackendOptions {
  return {
    command: '',
    args: [],
    env: {},
    inheritEnv: true,
    cwd: undefined,
    graceMs: 5000,
    logFile: undefined,
    logBufferLines: 1000,
    restart: defaultRestartPolicy(),
    health: { type: 'none' },
    startTimeoutMs: 30_000,
    healthIntervalMs: 200,
    checkPort: true,
    killOnExit: true,
  };
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // group already gone
      }
    }
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

interface Run {
  child: ChildProcess;
  pgid: number;
  exited: Promise<{ exitCode: number | null; signal: string | null }>;
}

class ProcessBackend extends BuiltinBackend implements Backend {
  readonly kind = 'process';
  readonly #o: ProcessBackendOptions;
  #run: Run | undefined;
  #lastExit: { exitCode: number | null; signal: string | null } | undefined;
  #lastError: string | undefined;
  #restartHistory: number[] = [];
  #restarts = 0;
  #restartTimer: TimerHandle | undefined;
  #want = false;
  #lines: string[] = [];
  #file: WriteStream | undefined;
  #stopping: Promise<void> | undefined;
  #starting: Promise<void> | undefined;

  constructor(o: ProcessBackendOptions, ctx: BackendContext) {
    if (!o.command)
      throw new BackendError(
        BackendErrorCode.StartFailed,
        'process backend needs options.command (the program to run)',
      );
    super('process', ctx);
    this.#o = o;
  }

  #line(stream: 'stdout' | 'stderr', line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#o.logBufferLines)
      this.#lines.splice(0, this.#lines.length - this.#o.logBufferLines);
    this.#file?.write(`${line}\n`);
    if (stream === 'stderr') this.log.warn(line, { stream });
    else this.log.info(line, { stream });
    this.emit({ type: 'log', backend: this.name, stream, line });
  }

  #pipe(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.#line(name, buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => {
      if (buf) this.#line(name, buf);
      buf = '';
    });
  }

  #spawn(): Promise<void> {
    const spawning = this.#spawnNow();
    this.#spawning = spawning;
    const done = () => void (this.#spawning === spawning && (this.#spawning = undefined));
    spawning.then(done, done);
    return spawning;
  }
  /** A spawn whose process has not reported `spawn` yet (stop() waits for it, to stop what it starts). */
  #spawning: Promise<void> | undefined;

  #spawnNow(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#o.logFile && !this.#file) this.#file = createWriteStream(this.#o.logFile, { flags: 'a' });
      const env = this.#o.inheritEnv ? { ...process.env, ...this.#o.env } : { ...this.#o.env };
      const child = spawn(this.#o.command, this.#o.args, {
        cwd: this.#o.cwd,
        env,
        detached: true, // own process group: stop and crash clean-up reach every process it forks
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) {
          this.log.error('process error', { err });
          return;
        }
        this.#lastError = err.message;
        this.setState(BackendState.Failed);
        reject(
          err.code === 'ENOENT'
            ? new ToolMissingError(
                this.#o.command,
                'install it, put its directory on PATH, or give options.command as an absolute path',
                { cause: err },
              )
            : new BackendError(
                BackendErrorCode.SpawnFailed,
                `cannot start ${this.#o.command}: ${err.message}`,
                { cause: err },
              ),
        );
      });
      child.once('spawn', () => {
        const pgid = child.pid!;
        if (this.#o.killOnExit) {
          installExitHook();
          liveGroups.add(pgid);
        }
        this.#pipe(child.stdout, 'stdout');
        this.#pipe(child.stderr, 'stderr');
        const exited = new Promise<{ exitCode: number | null; signal: string | null }>((res) =>
          child.once('exit', (code, signal) => res({ exitCode: code, signal })),
        );
        const run: Run = { child, pgid, exited };
        this.#run = run;
        this.log.info('started', { pid: pgid, command: this.#o.command });
        this.emit({ type: 'started', backend: this.name, pid: pgid });
        void exited.then((exit) => this.#onExit(run, exit));
        resolve();
      });
    });
  }

  #onExit(run: Run, exit: { exitCode: number | null; signal: string | null }): void {
    this.#lastExit = exit;
    this.emit({ type: 'exited', backend: this.name, pid: run.pgid, ...exit });
    if (this.#run === run) this.#run = undefined;
    if (!this.#want) return; // stop() owns the rest
    // An unexpected exit: whatever the process forked is an orphan of a dead instance; kill it
    // so a restart finds its ports free.
    killGroup(run.pgid, 'SIGKILL');
    liveGroups.delete(run.pgid);
    this.log.warn('process exited', { ...exit, pid: run.pgid });
    const now = this.clock.now();
    const d = restartDecision(this.#o.restart, exit, this.#restartHistory, now);
    if (!d.restart) {
      const clean = exit.exitCode === 0 && exit.signal === null;
      this.#lastError = clean
        ? undefined
        : `exited (code ${exit.exitCode}, signal ${exit.signal}); ${d.reason}`;
      if (!clean)
        this.emit({ type: 'gave-up', backend: this.name, restarts: this.#restarts, reason: d.reason });
      this.#want = false;
      this.setState(clean ? BackendState.Stopped : BackendState.Failed);
      return;
    }
    this.#restartHistory.push(now);
    this.#restarts++;
    this.setState(BackendState.Restarting);
    this.emit({ type: 'restarting', backend: this.name, attempt: d.attempt, delayMs: d.delayMs });
    this.#restartTimer = this.clock.setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#want || this.closed) return;
      this.#spawn().then(
        () => this.setState(BackendState.Running),
        (err: Error) => {
          this.#lastError = err.message;
          this.#want = false;
          this.emit({ type: 'gave-up', backend: this.name, restarts: this.#restarts, reason: err.message });
        },
      );
    }, d.delayMs);
  }

  start(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`backend ${this.name}`));
    if (this.#starting) return this.#starting;
    if (this.#want && this.state === BackendState.Running) return Promise.resolve();
    this.#starting = this.#start().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#stopping) await this.#stopping;
    const endpoint = healthEndpoint(this.#o.health);
    if (this.#o.checkPort && endpoint && !this.#run) {
      await assertPortFree(endpoint.host, endpoint.port, `backend ${this.name} (${this.#o.command})`);
    }
    this.#want = true;
    this.#restartHistory = [];
    this.#restarts = 0;
    this.#lastError = undefined;
    this.setState(BackendState.Starting);
    if (!this.#run) await this.#spawn();
    const deadline = this.clock.now() + this.#o.startTimeoutMs;
    let last: HealthResult | undefined;
    // A failover waits for this: the first probe 10 ms after the spawn, then backing off (×2) to the
    // steady-state interval.
    let pollMs = Math.min(10, this.#o.healthIntervalMs);
    for (;;) {
      if (this.state === BackendState.Failed || !this.#want) {
        throw new BackendError(
          BackendErrorCode.StartFailed,
          `backend ${this.name} (${this.#o.command}) failed while starting: ${this.#lastError ?? 'stopped'}. Last output:\n${this.#lines.slice(-10).join('\n')}`,
        );
      }
      if (this.#run) {
        last = await this.health();
        if (last.healthy) break;
      }
      if (this.clock.now() >= deadline) {
        await this.stop();
        throw new BackendError(
          BackendErrorCode.Unhealthy,
          `backend ${this.name} did not become healthy within ${this.#o.startTimeoutMs} ms (last probe: ${last?.detail ?? 'none'}); it was stopped. Last output:\n${this.#lines.slice(-10).join('\n')}`,
        );
      }
      await this.clock.sleep(Math.min(pollMs, Math.max(1, deadline - this.clock.now())));
      pollMs = Math.min(pollMs * 2, this.#o.healthIntervalMs);
    }
    this.setState(BackendState.Running);
  }

  stop(): Promise<void> {
    this.#want = false;
    this.#stopping ??= this.#stop().finally(() => (this.#stopping = undefined));
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#restartTimer) this.clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    // A restart between spawn() and its process's `spawn` event: wait for it, or the process it starts
    // would outlive the stop. A failed spawn started nothing.
    await this.#spawning?.catch(() => undefined);
    const run = this.#run;
    if (!run) {
      if (this.state !== BackendState.Failed) this.setState(BackendState.Stopped);
      return;
    }
    const t0 = this.clock.now();
    this.setState(BackendState.Stopping);
    killGroup(run.pgid, 'SIGCONT');
    killGroup(run.pgid, 'SIGTERM');
    const deadline = t0 + this.#o.graceMs;
    let escalated = false;
    // Wait for the leader to exit and the whole group to be empty, up to the grace period.
    let leaderGone = false;
    void run.exited.then(() => (leaderGone = true));
    while (this.clock.now() < deadline) {
      if (leaderGone && processGroupMembers(run.pgid).length === 0) break;
      await this.clock.sleep(Math.min(50, Math.max(1, deadline - this.clock.now())));
    }
    if (!leaderGone || processGroupMembers(run.pgid).length > 0) {
      escalated = true;
      this.log.warn('grace period over: SIGKILL to the process group', {
        pgid: run.pgid,
        graceMs: this.#o.graceMs,
      });
      killGroup(run.pgid, 'SIGKILL');
    }
    await run.exited;
    for (let i = 0; i < 100 && processGroupMembers(run.pgid).length > 0; i++) {
      killGroup(run.pgid, 'SIGKILL');
      await this.clock.sleep(20);
    }
    const left = processGroupMembers(run.pgid);
    liveGroups.delete(run.pgid);
    if (left.length) {
      this.setState(BackendState.Failed);
      throw new BackendError(
        BackendErrorCode.StopFailed,
        `backend ${this.name}: processes ${left.map((p) => `${p.pid} (${p.comm})`).join(', ')} survive SIGKILL (uninterruptible sleep?); check them with ps`,
      );
    }
    const durationMs = this.clock.now() - t0;
    this.log.info('stopped', { escalated, durationMs });
    this.emit({ type: 'stopped', backend: this.name, escalated, durationMs });
    this.setState(BackendState.Stopped);
  }

  /** Stop (SIGTERM, SIGKILL after the grace) then start and wait for health. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  health(): Promise<HealthResult> {
    if (!this.#run)
      return Promise.resolve({ healthy: false, detail: `not running (${this.state})`, latencyMs: 0 });
    if (this.#o.health.type === 'none')
      return Promise.resolve({ healthy: true, detail: `running, pid ${this.#run.pgid}`, latencyMs: 0 });
    return probe(this.#o.health);
  }

  status(): Promise<BackendStatus> {
    return Promise.resolve({
      kind: this.kind,
      state: this.state,
      pid: this.#run?.pgid,
      exitCode: this.#lastExit?.exitCode,
      signal: this.#lastExit?.signal,
      restarts: this.#restarts,
      sinceWallMs: this.sinceWallMs,
      detail: { command: this.#o.command, args: this.#o.args, lastError: this.#lastError },
    });
  }

  logs(opts: LogsOptions = {}): Promise<string[]> {
    return Promise.resolve(this.#lines.slice(-(opts.lines ?? 100)));
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.stop();
    } finally {
      const file = this.#file;
      this.#file = undefined;
      if (file) await new Promise<void>((r) => file.end(r));
    }
  }
}

/**
 * The `process` backend: runs a program in its own process group, restarts it by policy,
 * health-checks it over HTTP or TCP, and stops it with SIGTERM then SIGKILL to the whole group.
 *
 * @example
 * const backend = await processBackend.create(
 *   { command: 'convex-local-backend', args: ['--port', '3210'], health: { type: 'http', url: 'http://127.0.0.1:3210/version' } },
 *   { name: 'convex' },
 * );
 * await backend.start(); // resolves once /version answers 2xx/3xx
 */
export const processBackend = defineBackend<ProcessBackendOptions>({
  name: 'process',
  options: defaultProcessBackendOptions,
  factory: (options, context) => new ProcessBackend(options, context),
});
