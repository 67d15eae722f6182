import { ClosedError, type Clock, type Logger } from '@gc/core';
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
  type ContainerHealthCheck,
  type ContainerInfo,
  type PortMapping,
  type ResourceLimits,
  type VolumeMount,
} from './docker-args.js';
import {
  BackendState,
  type Backend,
  type BackendContext,
  type BackendEvent,
  type BackendStateValue,
  type BackendStatus,
  type HealthCheck,
  type HealthResult,
  type LogsOptions,
} from './types.js';

/** Options of the `docker` backend. */
export interface DockerBackendOptions {
  /** Image, for example `ghcr.io/get-convex/convex-backend:latest`. Required. */
  image: string;
  /** Container name. Default `gc-<instance name>`. */
  containerName: string | undefined;
  /** Arguments after the image. Default `[]`. */
  args: string[];
  /** Published ports. Default `[]`. */
  ports: PortMapping[];
  /** Environment of the container. Default `{}`. */
  env: Record<string, string>;
  /** Volumes and bind mounts. Default `[]`. */
  volumes: VolumeMount[];
  /** Network to attach to. Default the engine's default bridge. */
  network: string | undefined;
  /** Engine restart policy (`no`, `on-failure[:N]`, `always`, `unless-stopped`). Default `on-failure:5`. */
  restartPolicy: string;
  /** Resource limits. Default none. */
  resources: ResourceLimits;
  /** Health check run by the engine inside the container. Default none. */
  containerHealth: ContainerHealthCheck | undefined;
  /** Health check gc runs from the host on top of the container's state. Default `{ type: 'none' }`. */
  health: HealthCheck;
  /** Extra labels. `gc.backend=<name>` is always added. Default `{}`. */
  labels: Record<string, string>;
  /** Image pull policy. Default `missing`. */
  pull: 'missing' | 'always' | 'never';
  /** `--user`. Default none. */
  user: string | undefined;
  /** `--workdir`. Default none. */
  workdir: string | undefined;
  /** `--entrypoint`. Default the image's. */
  entrypoint: string | undefined;
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

class DockerBackend implements Backend {
  readonly kind = 'docker';
  readonly name: string;
  readonly containerName: string;
  readonly #o: DockerBackendOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #emit: (e: BackendEvent) => void;
  #state: BackendStateValue = BackendState.Stopped;
  #since = Date.now();
  #closed = false;
  #startRestartCount = 0;
  #last: ContainerInfo | undefined;

  constructor(o: DockerBackendOptions, ctx: BackendContext) {
    if (!o.image) throw new BackendError(BackendErrorCode.StartFailed, 'docker backend needs options.image');
    validateRestartPolicy(o.restartPolicy);
    this.#o = o;
    this.name = ctx.name;
    this.containerName = o.containerName ?? `gc-${ctx.name}`;
    this.#clock = ctx.clock;
    this.#log = ctx.logger.child({ backend: ctx.name, kind: 'docker', container: this.containerName });
    this.#emit = (e) => {
      try {
        ctx.onEvent(e);
      } catch (err) {
        this.#log.error('backend event listener threw', { err });
      }
    };
  }

  #setState(to: BackendStateValue): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#since = this.#clock.wallNow();
    this.#emit({ type: 'state', backend: this.name, from, to });
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
    if (this.#closed) throw new ClosedError(`backend ${this.name}`);
    const existing = await this.inspect();
    if (existing?.running && this.#state === BackendState.Running) return;
    if (this.#o.checkPorts && !existing?.running) {
      for (const p of this.#o.ports) {
        if ((p.protocol ?? 'tcp') === 'tcp')
          await assertPortFree(p.hostIp ?? '0.0.0.0', p.hostPort, `container ${this.containerName}`);
      }
    }
    this.#setState(BackendState.Starting);
    if (!existing?.running) {
      // A stopped container of the same name is a leftover of an earlier run: replace it.
      if (existing) {
        const rm = await this.#docker(dockerRmArgs(this.containerName));
        if (rm.exitCode !== 0) throw this.#failure(rm, `removing old container ${this.containerName}`);
      }
      const r = await this.#docker(
        dockerRunArgs({
          containerName: this.containerName,
          image: this.#o.image,
          args: this.#o.args,
          ports: this.#o.ports,
          env: this.#o.env,
          volumes: this.#o.volumes,
          network: this.#o.network,
          restartPolicy: this.#o.restartPolicy,
          resources: this.#o.resources,
          containerHealth: this.#o.containerHealth,
          labels: { ...this.#o.labels, 'gc.backend': this.name },
          pull: this.#o.pull,
          user: this.#o.user,
          workdir: this.#o.workdir,
          entrypoint: this.#o.entrypoint,
          stopTimeoutS: this.#o.graceMs / 1000,
        }),
        this.#o.startTimeoutMs,
      );
      if (r.exitCode !== 0) {
        this.#setState(BackendState.Failed);
        throw this.#failure(r, `starting container ${this.containerName}`);
      }
    }
    const deadline = this.#clock.now() + this.#o.startTimeoutMs;
    let last = 'not probed';
    for (;;) {
      const h = await this.health();
      if (h.healthy) break;
      last = h.detail;
      const info = this.#last;
      if (info && !info.running && info.status === 'exited' && this.#o.restartPolicy === 'no') {
        this.#setState(BackendState.Failed);
        const logs = await this.logs({ lines: 10 }).catch(() => []);
        throw new BackendError(
          BackendErrorCode.StartFailed,
          `container ${this.containerName} exited with code ${info.exitCode}. Its logs:\n${logs.join('\n')}`,
        );
      }
      if (this.#clock.now() >= deadline) {
        this.#setState(BackendState.Failed);
        throw new BackendError(
          BackendErrorCode.Unhealthy,
          `container ${this.containerName} was not running and healthy within ${this.#o.startTimeoutMs} ms (last: ${last})`,
        );
      }
      await this.#clock.sleep(this.#o.pollIntervalMs);
    }
    this.#startRestartCount = this.#last?.restartCount ?? 0;
    this.#emit({ type: 'started', backend: this.name, pid: this.#last?.pid });
    this.#setState(BackendState.Running);
  }

  async stop(): Promise<void> {
    const t0 = this.#clock.now();
    const info = await this.inspect();
    if (!info) {
      this.#setState(BackendState.Stopped);
      return;
    }
    this.#setState(BackendState.Stopping);
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
    this.#emit({ type: 'stopped', backend: this.name, escalated, durationMs: this.#clock.now() - t0 });
    this.#setState(BackendState.Stopped);
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
      state: this.#state,
      pid: info?.pid,
      exitCode: info && !info.running ? info.exitCode : undefined,
      signal: undefined,
      restarts: Math.max(0, (info?.restartCount ?? 0) - this.#startRestartCount),
      sinceWallMs: this.#since,
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#state !== BackendState.Stopped) await this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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
