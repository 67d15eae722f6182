/**
 * Pure builders of `docker` command lines and parsers of its output for the docker backend.
 */

/** A published port: `hostPort` on the host to `containerPort` in the container. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** Default `tcp`. */
  protocol?: 'tcp' | 'udp';
  /** Host address to bind. Default all addresses. */
  hostIp?: string;
}

/** A bind mount or named volume. */
export interface VolumeMount {
  /** Host path or volume name. */
  source: string;
  /** Path in the container. */
  target: string;
  /** Mount read-only. Default false. */
  readOnly?: boolean;
}

/** Container resource limits. */
export interface ResourceLimits {
  /** CPUs (`--cpus`), for example 1.5. */
  cpus?: number;
  /** Memory limit in bytes (`--memory`). */
  memoryBytes?: number;
  /** Most processes in the container (`--pids-limit`). */
  pidsLimit?: number;
}

/** Container health check run by the engine (`--health-*`). */
export interface ContainerHealthCheck {
  /** Command run inside the container, through its shell. */
  command: string;
  intervalMs?: number;
  timeoutMs?: number;
  retries?: number;
  startPeriodMs?: number;
}

/**
 * The container settings the docker backend's options pass unchanged to {@link dockerRunArgs}.
 * The defaults named are those of the backend's options.
 */
export interface DockerContainerSettings {
  /** Image, for example `ghcr.io/get-convex/convex-backend:latest`. Required. */
  image: string;
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
  /** Image pull policy (`--pull`: `missing`, `always`, `never`). Default `missing`. */
  pull: 'missing' | 'always' | 'never';
  /** `--user`. Default none. */
  user: string | undefined;
  /** `--workdir`. Default none. */
  workdir: string | undefined;
  /** `--entrypoint`. Default the image's. */
  entrypoint: string | undefined;
}

/** What {@link dockerRunArgs} needs. */
export interface DockerRunSpec extends DockerContainerSettings {
  containerName: string;
  /** Every label of the container. */
  labels: Record<string, string>;
  /** Seconds the engine waits after SIGTERM on stop (`--stop-timeout`). */
  stopTimeoutS: number;
}

const RESTART_POLICY = /^(no|always|unless-stopped|on-failure(:\d+)?)$/;

/** Validates a docker restart policy string; throws RangeError naming the valid forms. */
export function validateRestartPolicy(policy: string): void {
  if (!RESTART_POLICY.test(policy)) {
    throw new RangeError(
      `docker restart policy ${JSON.stringify(policy)} is not one of no, always, unless-stopped, on-failure[:N]`,
    );
  }
}

const ms = (v: number) => `${Math.max(1, Math.round(v))}ms`;

/** `docker run -d ...` for `spec`. Every value is its own argv entry (no shell). */
export function dockerRunArgs(spec: DockerRunSpec): string[] {
  validateRestartPolicy(spec.restartPolicy);
  const a = [
    'run',
    '--detach',
    '--name',
    spec.containerName,
    '--pull',
    spec.pull,
    '--restart',
    spec.restartPolicy,
  ];
  a.push('--stop-timeout', String(Math.max(0, Math.ceil(spec.stopTimeoutS))));
  for (const [k, v] of Object.entries(spec.labels)) a.push('--label', `${k}=${v}`);
  for (const p of spec.ports) {
    const proto = p.protocol && p.protocol !== 'tcp' ? `/${p.protocol}` : '';
    a.push(
      '--publish',
      `${p.hostIp ? `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:` : ''}${p.hostPort}:${p.containerPort}${proto}`,
    );
  }
  for (const [k, v] of Object.entries(spec.env)) a.push('--env', `${k}=${v}`);
  for (const v of spec.volumes) a.push('--volume', `${v.source}:${v.target}${v.readOnly ? ':ro' : ''}`);
  if (spec.network) a.push('--network', spec.network);
  if (spec.resources.cpus !== undefined) a.push('--cpus', String(spec.resources.cpus));
  if (spec.resources.memoryBytes !== undefined)
    a.push('--memory', `${Math.floor(spec.resources.memoryBytes)}b`);
  if (spec.resources.pidsLimit !== undefined) a.push('--pids-limit', String(spec.resources.pidsLimit));
  const h = spec.containerHealth;
  if (h) {
    a.push('--health-cmd', h.command);
    if (h.intervalMs !== undefined) a.push('--health-interval', ms(h.intervalMs));
    if (h.timeoutMs !== undefined) a.push('--health-timeout', ms(h.timeoutMs));
    if (h.retries !== undefined) a.push('--health-retries', String(h.retries));
    if (h.startPeriodMs !== undefined) a.push('--health-start-period', ms(h.startPeriodMs));
  }
  if (spec.user) a.push('--user', spec.user);
  if (spec.workdir) a.push('--workdir', spec.workdir);
  if (spec.entrypoint !== undefined) a.push('--entrypoint', spec.entrypoint);
  a.push(spec.image, ...spec.args);
  return a;
}

/** `docker stop --time S NAME`. */
export function dockerStopArgs(containerName: string, timeoutS: number): string[] {
  return ['stop', '--time', String(Math.max(0, Math.ceil(timeoutS))), containerName];
}

/** `docker rm --force NAME`. */
export function dockerRmArgs(containerName: string): string[] {
  return ['rm', '--force', containerName];
}

/** `docker inspect --type container NAME`. */
export function dockerInspectArgs(containerName: string): string[] {
  return ['inspect', '--type', 'container', containerName];
}

/** `docker logs --tail N NAME`. */
export function dockerLogsArgs(containerName: string, lines: number): string[] {
  return ['logs', '--tail', String(Math.max(1, Math.floor(lines))), containerName];
}

/** `docker version --format {{.Server.Version}}`: fails fast when no engine answers. */
export function dockerServerVersionArgs(): string[] {
  return ['version', '--format', '{{.Server.Version}}'];
}

/** The container state the backend uses, from `docker inspect`. */
export interface ContainerInfo {
  id: string;
  status: string;
  running: boolean;
  pid: number | undefined;
  exitCode: number | undefined;
  /** Engine health: `healthy`, `unhealthy`, `starting`, or undefined without a health check. */
  health: string | undefined;
  restartCount: number;
  oomKilled: boolean;
  error: string;
}

/** Parses `docker inspect` output (an array with one container). */
export function parseInspect(json: string): ContainerInfo | undefined {
  const data = JSON.parse(json) as Array<{
    Id?: string;
    RestartCount?: number;
    State?: {
      Status?: string;
      Running?: boolean;
      Pid?: number;
      ExitCode?: number;
      OOMKilled?: boolean;
      Error?: string;
      Health?: { Status?: string };
    };
  }>;
  const c = data[0];
  if (!c) return undefined;
  const s = c.State ?? {};
  return {
    id: c.Id ?? '',
    status: s.Status ?? 'unknown',
    running: s.Running === true,
    pid: s.Pid && s.Pid > 0 ? s.Pid : undefined,
    exitCode: s.ExitCode,
    health: s.Health?.Status,
    restartCount: c.RestartCount ?? 0,
    oomKilled: s.OOMKilled === true,
    error: s.Error ?? '',
  };
}

/** The classes of docker failures with their own error. */
export type DockerFailure =
  'no-engine' | 'no-container' | 'port-in-use' | 'no-image' | 'name-conflict' | 'permission' | 'other';

/** Classifies a docker CLI failure by its stderr. */
export function classifyDockerError(stderr: string): DockerFailure {
  if (
    /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|docker daemon is not running/i.test(
      stderr,
    )
  )
    return 'no-engine';
  if (/permission denied while trying to connect/i.test(stderr)) return 'permission';
  if (/No such container|No such object/i.test(stderr)) return 'no-container';
  if (/port is already allocated|address already in use/i.test(stderr)) return 'port-in-use';
  if (
    /Unable to find image|pull access denied|manifest unknown|repository does not exist|No such image/i.test(
      stderr,
    )
  )
    return 'no-image';
  if (/is already in use by container/i.test(stderr)) return 'name-conflict';
  return 'other';
}

/** The host address and port of docker's "Bind for HOST:PORT failed: port is already allocated". */
export function parseBindFailure(stderr: string): { host: string; port: number } | undefined {
  const m =
    /Bind for \[?([^\]\s]+?)\]?:(\d+) failed/.exec(stderr) ??
    /listen tcp[46]? \[?([^\]\s]+?)\]?:(\d+): bind: address already in use/.exec(stderr);
  return m ? { host: m[1]!, port: Number(m[2]) } : undefined;
}
