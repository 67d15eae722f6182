import { describe, expect, it } from 'vitest';
import {
  classifyDockerError,
  parseBindFailure,
  dockerInspectArgs,
  dockerLogsArgs,
  dockerRmArgs,
  dockerRunArgs,
  dockerStopArgs,
  parseInspect,
  validateRestartPolicy,
  type DockerRunSpec,
} from './docker-args.js';
import { healthEndpoint } from './health.js';
import { parseProcNetTcp, parseProcStat } from './procfs.js';
import { defaultRestartPolicy, restartDecision } from './restart.js';
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
} from './systemd-args.js';

describe('systemctl and journalctl command lines', () => {
  it('normalizes unit names and refuses odd characters', () => {
    expect(normalizeUnit('convex-backend')).toBe('convex-backend.service');
    expect(normalizeUnit('app@1.service')).toBe('app@1.service');
    expect(normalizeUnit('web.socket')).toBe('web.socket');
    expect(() => normalizeUnit('a b; rm -rf /')).toThrow(RangeError);
  });
  it('builds start/stop/restart without blocking, is-active, show, kill and journalctl', () => {
    expect(systemctlVerbArgs({ user: false }, 'start', 'convex')).toEqual([
      'start',
      '--no-block',
      'convex.service',
    ]);
    expect(systemctlVerbArgs({ user: true }, 'restart', 'convex')).toEqual([
      '--user',
      'restart',
      '--no-block',
      'convex.service',
    ]);
    expect(systemctlIsActiveArgs({ user: false }, 'x')).toEqual(['is-active', 'x.service']);
    const show = systemctlShowArgs({ user: false }, 'x');
    expect(show.slice(0, 3)).toEqual(['show', 'x.service', '--no-pager']);
    expect(show[3]).toMatch(/^--property=Id,LoadState,ActiveState,SubState,Type,MainPID,/);
    expect(systemctlKillArgs({ user: false }, 'x', 'SIGKILL')).toEqual([
      'kill',
      '--signal=SIGKILL',
      'x.service',
    ]);
    expect(systemctlResetFailedArgs({ user: true }, 'x')).toEqual(['--user', 'reset-failed', 'x.service']);
    expect(journalctlArgs({ user: false }, 'x', 50)).toEqual([
      '-u',
      'x.service',
      '-n',
      '50',
      '--no-pager',
      '-o',
      'cat',
    ]);
    expect(journalctlArgs({ user: true }, 'x', 0).slice(0, 4)).toEqual([
      '--user-unit',
      'x.service',
      '-n',
      '1',
    ]);
  });
  it('parses systemctl show', () => {
    const info = parseShow(
      [
        'Id=convex.service',
        'LoadState=loaded',
        'ActiveState=activating',
        'SubState=start',
        'Type=notify',
        'MainPID=4242',
        'ExecMainStatus=0',
        'Result=success',
        'NRestarts=2',
        'LoadError=',
      ].join('\n'),
    );
    expect(info).toMatchObject({
      id: 'convex.service',
      loadState: 'loaded',
      activeState: 'activating',
      type: 'notify',
      mainPid: 4242,
      restarts: 2,
    });
    const gone = parseShow('Id=nope.service\nLoadState=not-found\nActiveState=inactive\nMainPID=0\n');
    expect(gone.loadState).toBe('not-found');
    expect(gone.mainPid).toBeUndefined();
  });
  it('classifies systemctl failures', () => {
    expect(
      classifySystemctlError(
        "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down",
      ),
    ).toBe('no-systemd');
    expect(classifySystemctlError('Failed to start nope.service: Unit nope.service not found.')).toBe(
      'not-found',
    );
    expect(classifySystemctlError('Failed to start x.service: Access denied')).toBe('permission');
    expect(classifySystemctlError('Job for x.service failed')).toBe('other');
  });
});

describe('docker command lines', () => {
  const spec: DockerRunSpec = {
    containerName: 'gc-convex',
    image: 'ghcr.io/get-convex/convex-backend:latest',
    args: ['--port', '3210'],
    ports: [
      { hostPort: 3210, containerPort: 3210 },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1' },
      { hostPort: 8080, containerPort: 80, hostIp: '::1' },
    ],
    env: { INSTANCE_NAME: 'prod', EMPTY: '' },
    volumes: [
      { source: '/var/lib/convex', target: '/convex/data' },
      { source: 'certs', target: '/certs', readOnly: true },
    ],
    network: 'gc-net',
    restartPolicy: 'on-failure:5',
    resources: { cpus: 1.5, memoryBytes: 512 * 1024 * 1024, pidsLimit: 256 },
    containerHealth: {
      command: 'curl -f http://localhost:3210/version',
      intervalMs: 2000,
      timeoutMs: 1000,
      retries: 3,
      startPeriodMs: 5000,
    },
    labels: { 'gc.backend': 'convex' },
    pull: 'missing',
    user: '1000:1000',
    workdir: '/convex',
    entrypoint: undefined,
    stopTimeoutS: 9.5,
  };
  // What every `docker run` of `spec` starts with, up to the stop timeout's value.
  const runPrefix = [
    'run',
    '--detach',
    '--name',
    'gc-convex',
    '--pull',
    'missing',
    '--restart',
    'on-failure:5',
    '--stop-timeout',
  ];
  it('builds docker run with every option as its own argument', () => {
    const a = dockerRunArgs(spec);
    expect(a.slice(0, 9)).toEqual(runPrefix);
    expect(a[9]).toBe('10');
    const pairs = (flag: string) => a.flatMap((v, i) => (v === flag ? [a[i + 1]] : []));
    expect(pairs('--publish')).toEqual(['3210:3210', '127.0.0.1:5353:53/udp', '[::1]:8080:80']);
    expect(pairs('--env')).toEqual(['INSTANCE_NAME=prod', 'EMPTY=']);
    expect(pairs('--volume')).toEqual(['/var/lib/convex:/convex/data', 'certs:/certs:ro']);
    expect(pairs('--network')).toEqual(['gc-net']);
    expect(pairs('--cpus')).toEqual(['1.5']);
    expect(pairs('--memory')).toEqual(['536870912b']);
    expect(pairs('--pids-limit')).toEqual(['256']);
    expect(pairs('--health-cmd')).toEqual(['curl -f http://localhost:3210/version']);
    expect(pairs('--health-interval')).toEqual(['2000ms']);
    expect(pairs('--health-retries')).toEqual(['3']);
    expect(pairs('--health-start-period')).toEqual(['5000ms']);
    expect(pairs('--label')).toEqual(['gc.backend=convex']);
    expect(pairs('--user')).toEqual(['1000:1000']);
    expect(a.slice(-3)).toEqual(['ghcr.io/get-convex/convex-backend:latest', '--port', '3210']);
    expect(a).not.toContain('--entrypoint');
  });
  it('leaves out what is not set, and refuses a bad restart policy', () => {
    const a = dockerRunArgs({
      ...spec,
      ports: [],
      env: {},
      volumes: [],
      network: undefined,
      resources: {},
      containerHealth: undefined,
      labels: {},
      user: undefined,
      workdir: undefined,
      args: [],
      entrypoint: '',
    });
    expect(a).toEqual([...runPrefix, '10', '--entrypoint', '', spec.image]);
    expect(() => dockerRunArgs({ ...spec, restartPolicy: 'sometimes' })).toThrow(/not one of no, always/);
    expect(() => validateRestartPolicy('unless-stopped')).not.toThrow();
  });
  it('builds stop, rm, inspect and logs', () => {
    expect(dockerStopArgs('c', 9.2)).toEqual(['stop', '--time', '10', 'c']);
    expect(dockerRmArgs('c')).toEqual(['rm', '--force', 'c']);
    expect(dockerInspectArgs('c')).toEqual(['inspect', '--type', 'container', 'c']);
    expect(dockerLogsArgs('c', 20)).toEqual(['logs', '--tail', '20', 'c']);
  });
  it('parses docker inspect', () => {
    const info = parseInspect(
      JSON.stringify([
        {
          Id: 'abc',
          RestartCount: 2,
          State: {
            Status: 'running',
            Running: true,
            Pid: 999,
            ExitCode: 0,
            OOMKilled: false,
            Error: '',
            Health: { Status: 'starting' },
          },
        },
      ]),
    );
    expect(info).toEqual({
      id: 'abc',
      status: 'running',
      running: true,
      pid: 999,
      exitCode: 0,
      health: 'starting',
      restartCount: 2,
      oomKilled: false,
      error: '',
    });
    expect(parseInspect('[]')).toBeUndefined();
    expect(
      parseInspect(JSON.stringify([{ State: { Status: 'exited', Running: false, Pid: 0, ExitCode: 137 } }])),
    ).toMatchObject({ pid: undefined, exitCode: 137, health: undefined });
  });
  it('classifies docker failures', () => {
    expect(
      classifyDockerError(
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
      ),
    ).toBe('no-engine');
    expect(classifyDockerError('Error response from daemon: No such container: gc-x')).toBe('no-container');
    expect(classifyDockerError('Error: No such object: gc-x')).toBe('no-container');
    expect(classifyDockerError('Bind for 0.0.0.0:3210 failed: port is already allocated')).toBe(
      'port-in-use',
    );
    expect(
      classifyDockerError(
        "Unable to find image 'x:1' locally\ndocker: Error response from daemon: pull access denied",
      ),
    ).toBe('no-image');
    expect(
      classifyDockerError('Conflict. The container name "/gc-x" is already in use by container "abc"'),
    ).toBe('name-conflict');
    expect(classifyDockerError('permission denied while trying to connect to the Docker daemon socket')).toBe(
      'permission',
    );
    expect(classifyDockerError('weird')).toBe('other');
  });
  it('reads the host and port out of a bind failure', () => {
    expect(parseBindFailure('Bind for 0.0.0.0:3210 failed: port is already allocated')).toEqual({
      host: '0.0.0.0',
      port: 3210,
    });
    expect(parseBindFailure('Bind for [::]:8080 failed: port is already allocated')).toEqual({
      host: '::',
      port: 8080,
    });
    expect(
      parseBindFailure(
        'driver failed programming external connectivity: listen tcp4 127.0.0.1:9000: bind: address already in use',
      ),
    ).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseBindFailure('something else')).toBeUndefined();
  });
});

describe('restart policy', () => {
  const p = {
    ...defaultRestartPolicy(),
    maxRestarts: 3,
    windowMs: 10_000,
    initialBackoffMs: 100,
    maxBackoffMs: 350,
    factor: 2,
  };
  it('restarts failures with growing, capped backoff up to the limit in the window', () => {
    const crash = { exitCode: 1, signal: null };
    expect(restartDecision(p, crash, [], 0)).toEqual({ restart: true, delayMs: 100, attempt: 1 });
    expect(restartDecision(p, crash, [0], 1)).toEqual({ restart: true, delayMs: 200, attempt: 2 });
    expect(restartDecision(p, crash, [0, 1], 2)).toEqual({ restart: true, delayMs: 350, attempt: 3 });
    const over = restartDecision(p, crash, [0, 1, 2], 3);
    expect(over.restart).toBe(false);
    expect(!over.restart && over.reason).toMatch(/restarted 3 times within 10000 ms \(limit 3\)/);
    // Old restarts slide out of the window.
    expect(restartDecision(p, crash, [0, 1, 2], 10_002)).toEqual({ restart: true, delayMs: 100, attempt: 1 });
  });
  it('follows the mode: on-failure ignores clean exits, always restarts them, never never does', () => {
    const clean = { exitCode: 0, signal: null };
    const killed = { exitCode: null, signal: 'SIGKILL' };
    expect(restartDecision(p, clean, [], 0).restart).toBe(false);
    expect(restartDecision(p, killed, [], 0).restart).toBe(true);
    expect(restartDecision({ ...p, mode: 'always' }, clean, [], 0).restart).toBe(true);
    expect(restartDecision({ ...p, mode: 'never' }, killed, [], 0).restart).toBe(false);
  });
});

describe('/proc parsers and health endpoints', () => {
  it('parses /proc/PID/stat with spaces and parentheses in the name', () => {
    expect(parseProcStat('1234 (my (weird) proc) S 1 1230 1230 0 -1 4194560')).toEqual({
      pid: 1234,
      comm: 'my (weird) proc',
      state: 'S',
      ppid: 1,
      pgrp: 1230,
    });
    expect(parseProcStat('garbage')).toBeUndefined();
  });
  it('finds listening sockets in /proc/net/tcp', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:0C8A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:9C40 0100007F:0C8A 01 00000000:00000000 00:00000000 00000000     0        0 654321 1 0000000000000000 20 4 30 10 -1',
    ].join('\n');
    expect(parseProcNetTcp(text)).toEqual([{ port: 3210, inode: 123456 }]);
  });
  it('derives the host and port a health check uses', () => {
    expect(healthEndpoint({ type: 'http', url: 'http://127.0.0.1:3210/version' })).toEqual({
      host: '127.0.0.1',
      port: 3210,
    });
    expect(healthEndpoint({ type: 'http', url: 'https://example.test/' })).toEqual({
      host: 'example.test',
      port: 443,
    });
    expect(healthEndpoint({ type: 'http', url: 'http://[::1]:81/' })).toEqual({ host: '::1', port: 81 });
    expect(healthEndpoint({ type: 'tcp', port: 5432 })).toEqual({ host: '127.0.0.1', port: 5432 });
    expect(healthEndpoint({ type: 'none' })).toBeUndefined();
    expect(healthEndpoint({ type: 'http', url: 'not a url' })).toBeUndefined();
  });
});
