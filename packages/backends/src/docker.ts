import { ClosedError } from '@gc/core';
import { BuiltinBackend } from './base.js';
import { defineBackend } from './define.js';
import { BackendError, BackendErrorCode, CommandFailedError, PortInUseError } from './errors.js';
import { runTool, type ExecResult } from './exec.js';
import { probe } from './health.js';
import { assertPortFree } from './ports.js';
import {
  classifyDockerError,
  parseBindFailure,
  dockerInspectArgs,
  dockerLogsArgs,
  dockerRmArgs,
  dockerRunArgs,
  dockerServerVersionArgs,
  dockerStopArgs,
  parseInspect,
  validateRestartPolicy,
  type ContainerInfo,
  type DockerContainerSettings,
} from './docker-args.js';
import {
  BackendState,
  type Backend,
  type BackendContext,
  type BackendStatus,
  type HealthCheck,
  type HealthResult,
  type LogsOptions,
} from './types.js';

/** Options of the `docker` backend. */
export interface DockerBackendOptions extends DockerContainerSettings {
  /** Container name. Default `gc-<instance name>`. */
  containerName: string | undefined;
  /** Health check gc runs from the host on top of the container's state. Default `{ type: 'none' }`. */
  health: HealthCheck;
  /** Extra labels. `gc.backend=<name>` is always added. Default `{}`. */
  labels: Record<string, string>;
  /** How long start waits for running and healthy, in ms (pulling counts). Default `120000`. */
  startTimeoutMs: number;
  /** Grace between SIGTERM and SIGKILL on stop, in ms (`docker stop --time`). Default `10000`. */
  graceMs: number;
  /** Poll interval while waiting, in ms. Default `250`. */
  pollIntervalMs: number;
  /** Time limit of one docker call other than run/stop, in ms. Default `15000`. */
  commandTimeoutMs: number;
  /** Remove the container after stop. Default `true`. */
  removeOnStop: boolean;
  /** Refuse to start when a published host port is already bound. Default `true`. */
  checkPorts: boolean;
  /** Program name or path. Default `docker`. */
  command: string;
  /** Environment of the CLI (PATH, DOCKER_HOST). Default `process.env`. */
  cliEnv: NodeJS.ProcessEnv | undefined;
}

/** Defaults of {@link DockerBackendOptions} (`image` must be given). */
export function defaultDockerBackendOptions(): DockerBackendOptions {
  return {
    image: '',
    containerName: undefined,
    args: [],
    ports: [],
    env: {},
    volumes: [],
    network: undefined,
    restartPolicy: 'on-failure:5',
    resources: {},
    containerHealth: undefined,
    health: { type: 'none' },
    labels: {},
    pull: 'missing',
    user: undefined,
    workdir: undefined,
    entrypoint: undefined,
    startTimeoutMs: 120_000,
    graceMs: 10_000,
    pollIntervalMs: 250,
    commandTimeoutMs: 15_000,
    removeOnStop: true,
    checkPorts: true,
    command: 'docker',
    cliEnv: undefined,
  };
}

const DOCKER_HINT =
  'install the Docker CLI and engine (apt-get install -y docker.io), or use the process or systemd backend';

class DockerBackend extends BuiltinBackend implements Backend {
  readonly kind = 'docker';
  readonly containerName: string;
  readonly #o: DockerBackendOptions;
  #startRestartCount = 0;
  #last: ContainerInfo | undefined;

  constructor(o: DockerBackendOptions, ctx: BackendContext) {
    if (!o.image) throw new BackendError(BackendErrorCode.StartFailed, 'docker backend needs options.image');
    validateRestartPolicy(o.restartPolicy);
    const containerName = o.containerName ?? `gc-${ctx.name}`;
    super('docker', ctx, { container: containerName });
    this.#o = o;
    this.containerName = containerName;
  }

  #docker(args: string[], timeoutMs = this.#o.commandTimeoutMs): Promise<ExecResult> {
    return runTool(this.#o.command, args, { timeoutMs, env: this.#o.cliEnv, missingHint: DOCKER_HINT });
  }

  #failure(r: ExecResult, what: string): BackendError {
    const stderr = r.stderr.trim();
    const detail = { command: r.command, exitCode: r.exitCode, stderr };
    switch (classifyDockerError(stderr)) {
      case 'no-engine':
        return new CommandFailedError(
          BackendErrorCode.DockerUnavailable,
          `${what}: no Docker engine answers (${stderr}). Start it (systemctl start docker), point DOCKER_HOST at one, or use the process or systemd backend`,
          detail,
        );
      case 'permission':
        return new CommandFailedError(
          BackendErrorCode.DockerUnavailable,
          `${what}: not allowed to talk to the Docker engine (${stderr}). Run gc as root or add its user to the docker group`,
          detail,
        );
      case 'port-in-use': {
        const p = this.#o.ports[0];
        const where = parseBindFailure(stderr) ?? { host: p?.hostIp ?? '0.0.0.0', port: p?.hostPort ?? 0 };
        return new PortInUseError(where.host, where.port, `container ${this.containerName}`, undefined, {
          cause: new Error(stderr),
        });
      }
      case 'no-image':
        return new CommandFailedError(
          BackendErrorCode.StartFailed,
          `${what}: image ${this.#o.image} is not available (${stderr}). Check the name and tag, log in to the registry (docker login), or pull it beforehand`,
          detail,
        );
      default:
        return new CommandFailedError(
          BackendErrorCode.CommandFailed,
          `${what} failed (exit ${r.exitCode}): ${stderr}`,
          detail,
        );
    }
  }

  /** Throws a clear error unless a Docker engine answers. Returns the engine version. */
  async checkEngine(): Promise<string> {
    const r = await this.#docker(dockerServerVersionArgs());
    if (r.exitCode !== 0) throw this.#failure(r, 'checking the Docker engine');
    return r.stdout.trim();
  }

  /** The container as `docker inspect` sees it, or undefined when it does not exist. */
  async inspect(): Promise<ContainerInfo | undefined> {
    const r = await this.#docker(dockerInspectArgs(this.containerName));
    if (r.exitCode !== 0) {
      if (classifyDockerError(r.stderr) === 'no-container') return undefined;
      throw this.#failure(r, `inspecting container ${this.containerName}`);
    }
    this.#last = parseInspect(r.stdout);
    return this.#last;
  }

  async start(): Promise<void> {
    if (this.closed) throw new ClosedError(`backend ${this.name}`);
    const existing = await this.inspect();
    if (existing?.running && this.state === BackendState.Running) return;
    if (this.#o.checkPorts && !existing?.running) {
      for (const p of this.#o.ports) {
        if ((p.protocol ?? 'tcp') === 'tcp')
          await assertPortFree(p.hostIp ?? '0.0.0.0', p.hostPort, `container ${this.containerName}`);
      }
    }
    this.setState(BackendState.Starting);
    if (!existing?.running) {
      // A stopped container of the same name is a leftover of an earlier run: replace it.
      if (existing) {
        const rm = await this.#docker(dockerRmArgs(this.containerName));
        if (rm.exitCode !== 0) throw this.#failure(rm, `removing old container ${this.containerName}`);
      }
      const r = await this.#docker(
        dockerRunArgs({
          ...this.#o,
          containerName: this.containerName,
          labels: { ...this.#o.labels, 'gc.backend': this.name },
          stopTimeoutS: this.#o.graceMs / 1000,
        }),
        this.#o.startTimeoutMs,
      );
      if (r.exitCode !== 0) {
        this.setState(BackendState.Failed);
        throw this.#failure(r, `starting container ${this.containerName}`);
      }
    }
    await this.pollUntilReady(
      this.#o.startTimeoutMs,
      this.#o.pollIntervalMs,
      async () => {
        const h = await this.health();
        if (h.healthy) return true;
        const info = this.#last;
        if (info && !info.running && info.status === 'exited' && this.#o.restartPolicy === 'no') {
          throw await this.failStart(
            `container ${this.containerName} exited with code ${info.exitCode}. Its logs:`,
          );
        }
        return h.detail;
      },
      (last) =>
        `container ${this.containerName} was not running and healthy within ${this.#o.startTimeoutMs} ms (last: ${last})`,
    );
    this.#startRestartCount = this.#last?.restartCount ?? 0;
    this.emit({ type: 'started', backend: this.name, pid: this.#last?.pid });
    this.setState(BackendState.Running);
  }

  async stop(): Promise<void> {
    const t0 = this.clock.now();
    const info = await this.inspect();
    if (!info) {
      this.setState(BackendState.Stopped);
      return;
    }
    this.setState(BackendState.Stopping);
    if (info.running) {
      const r = await this.#docker(
        dockerStopArgs(this.containerName, this.#o.graceMs / 1000),
        this.#o.graceMs + this.#o.commandTimeoutMs,
      );
      if (r.exitCode !== 0) throw this.#failure(r, `stopping container ${this.containerName}`);
    }
    const after = await this.inspect();
    const escalated = after?.exitCode === 137;
    if (this.#o.removeOnStop) {
      const r = await this.#docker(dockerRmArgs(this.containerName));
      if (r.exitCode !== 0 && classifyDockerError(r.stderr) !== 'no-container')
        throw this.#failure(r, `removing container ${this.containerName}`);
    }
    this.emit({ type: 'stopped', backend: this.name, escalated, durationMs: this.clock.now() - t0 });
    this.setState(BackendState.Stopped);
  }

  /** `docker stop` (and remove) then a fresh `docker run`, waiting for health. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async health(): Promise<HealthResult> {
    const t0 = performance.now();
    const info = await this.inspect();
    if (!info)
      return {
        healthy: false,
        detail: `container ${this.containerName} does not exist`,
        latencyMs: performance.now() - t0,
      };
    if (!info.running)
      return { healthy: false, detail: `container ${info.status}`, latencyMs: performance.now() - t0 };
    if (info.health !== undefined && info.health !== 'healthy') {
      return { healthy: false, detail: `container health ${info.health}`, latencyMs: performance.now() - t0 };
    }
    return probe(this.#o.health);
  }

  async status(): Promise<BackendStatus> {
    const info = await this.inspect();
    return {
      kind: this.kind,
      state: this.state,
      pid: info?.pid,
      exitCode: info && !info.running ? info.exitCode : undefined,
      signal: undefined,
      restarts: Math.max(0, (info?.restartCount ?? 0) - this.#startRestartCount),
      sinceWallMs: this.sinceWallMs,
      detail: {
        container: this.containerName,
        image: this.#o.image,
        status: info?.status ?? 'absent',
        health: info?.health,
        oomKilled: info?.oomKilled,
      },
    };
  }

  async logs(opts: LogsOptions = {}): Promise<string[]> {
    const r = await this.#docker(dockerLogsArgs(this.containerName, opts.lines ?? 100));
    if (r.exitCode !== 0) throw this.#failure(r, `reading logs of ${this.containerName}`);
    // docker logs replays the container's stdout and stderr on its own stdout and stderr.
    return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '');
  }
}

/**
 * The `docker` backend: runs a container with `docker run` (ports, env, volumes, network,
 * restart policy, resource limits, engine health check), waits for it to be running and healthy,
 * stops it with `docker stop` (SIGTERM, SIGKILL after `graceMs`) and removes it.
 *
 * @example
 * const backend = await dockerBackend.create({ image: 'nginx:1.27', ports: [{ hostPort: 8080, containerPort: 80 }], health: { type: 'http', url: 'http://127.0.0.1:8080/' } }, { name: 'web' });
 * await backend.start();
 */
export const dockerBackend = defineBackend<DockerBackendOptions>({
  name: 'docker',
  options: defaultDockerBackendOptions,
  factory: (options, context) => new DockerBackend(options, context),
});
