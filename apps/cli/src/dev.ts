import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Logger, silentLogger } from '@gc/core';
import { NatsServerProcess, assertPortFree, freePort } from '@gc/nats-server';
import { createAdminClient, devRestartServerSubject, type AdminClient } from '@gc/platform';
import { findListenerPid } from '@gc/backends';

/** Options of {@link startDevCluster}. */
export interface DevClusterOptions {
  /** Client port of the embedded nats-server. Default 4222. */
  port: number;
  /** Monitoring port of the embedded nats-server. Default 8222. */
  httpPort: number;
  /** Folder for state: server store, node configs, logs and pid files (kept between runs). Default `.gc-dev`. */
  dir: string;
  /** Local gc nodes to run (each a `gc run` process). 0 starts only the server. Default 3. */
  nodes: number;
  /**
   * nats-servers to run: 1, or 3 as a local JetStream cluster (client ports `port`, `port+1`, `port+2`;
   * monitoring `httpPort`…; routes on free ports). With 3, the apps' KV, election buckets, WAL streams and
   * snapshot stores get 3 replicas: what scaling out looks like. Default 1.
   */
  servers: number;
  /** HTTP port of the first node (dashboard, /status); the others use the next ports. Default 8081. */
  nodeHttpPort: number;
  /** Port of the example orders service on the first node; the others use the next ports. Default 8091. */
  servicePort: number;
  /** Platform name. Default `dev`. */
  platform: string;
  /** Restart a node process that died, after this many ms (0: never). Default 2000. */
  restartDelayMs: number;
  /** How long to wait for the nodes to answer, in ms. Default 30000. */
  readyTimeoutMs: number;
  /** Logger. Default silent. */
  logger: Logger;
}

/** Defaults for {@link DevClusterOptions}. */
export function defaultDevClusterOptions(): DevClusterOptions {
  return {
    port: 4222,
    httpPort: 8222,
    dir: '.gc-dev',
    nodes: 3,
    servers: 1,
    nodeHttpPort: 8081,
    servicePort: 8091,
    platform: 'dev',
    restartDelayMs: 2000,
    readyTimeoutMs: 30_000,
    logger: silentLogger,
  };
}

/** A running local development cluster. */
export interface DevCluster {
  /** The embedded server's client URL (the first one's with `servers: 3`). */
  readonly url: string;
  /** Every server's client URL. */
  readonly urls: string[];
  /** Its monitoring URL. */
  readonly monitorUrl: string;
  /** The nats-server version. */
  readonly serverVersion: string;
  /** The nats-server binary used. */
  readonly serverBin: string;
  /** The dashboard URL (served by the first node), when nodes run. */
  readonly dashboardUrl: string | undefined;
  /** The example orders service URL of each node (only the leader's answers). */
  readonly serviceUrls: string[];
  /** Node ids. */
  readonly nodeIds: string[];
  /** The operator client on the dev platform. */
  readonly admin: AdminClient;
  /**
   * Stops nats-server `name` (`gc-dev`, or `gc-dev-1`… with `servers: 3`) with `signal`, and starts it again
   * with the same store `afterMs` later (for fault drills and tests).
   */
  restartServer(name: string, signal?: NodeJS.Signals, afterMs?: number): Promise<void>;
  /** SIGKILLs the process of the current leader of `app` (the supervisor restarts it); returns its node id. */
  killLeader(app: string): Promise<string>;
  /** Stops every node (gracefully) and the server. Idempotent. */
  close(): Promise<void>;
}

/** Where the example service of `gc dev` lives. */
const servicePath = (): string => fileURLToPath(new URL('../dev/orders-service.mjs', import.meta.url));

/** The example apps `gc dev` runs on a node: `orders` with its database and HTTP service, `workers`. */
export function devAppsConfig(o: {
  dataDir: string;
  servicePort: number;
  nodeId: string;
  replicas?: number;
}): string {
  const db = join(o.dataDir, 'orders.db');
  const r = o.replicas ?? 1;
  return `apps:
  # active-passive: the leader promotes its replica of the SQLite database, starts the HTTP service
  # (process backend) on it, then runs onActive; kill the leader and watch all of it move.
  # sqlite.worker: commits are captured and published by a worker thread with its own connection
  orders:
    mode: active-passive
    election: { ttlMs: 3000, renewIntervalMs: 1000, renewDeadlineMs: 2000, pollIntervalMs: 250${r > 1 ? `, replicas: ${r}` : ''} }
    kvReplicas: ${r}
    # gc drill failover|stepdown|server-restart --app orders checks a failover against this
    recoveryBudgetMs: 10000
    sqlite: { path: ${JSON.stringify(db)}, snapshotIntervalMs: 60000, worker: true${r > 1 ? `, replicas: ${r}` : ''} }
    backend:
      type: process
      options:
        command: ${JSON.stringify(process.execPath)}
        args: [${JSON.stringify(servicePath())}]
        env: { PORT: "${o.servicePort}", DB: ${JSON.stringify(db)}, NODE_ID: ${o.nodeId} }
        health: { type: http, url: "http://127.0.0.1:${o.servicePort}/health" }
        graceMs: 3000
  # pool: active on every node
  workers:
    mode: pool
    kvReplicas: ${r}
`;
}

const binPath = (): string => fileURLToPath(new URL('../bin/run.js', import.meta.url));

/** Path of the pid file of a dev node. */
export function devPidFile(dir: string, nodeId: string): string {
  return join(resolve(dir), 'nodes', `${nodeId}.pid`);
}

/**
 * Starts the embedded nats-server (JetStream on, store kept in `dir`), checks it with the same
 * `connect()` every gc node uses, then runs `nodes` local `gc run` processes with the example apps and
 * restarts any that dies. The first node serves the dashboard.
 */
export async function startDevCluster(opts: Partial<DevClusterOptions> = {}): Promise<DevCluster> {
  const o = { ...defaultDevClusterOptions(), ...opts };
  const root = resolve(o.dir);
  const natsDir = join(root, 'nats');
  mkdirSync(join(root, 'nodes'), { recursive: true });
  mkdirSync(join(root, 'logs'), { recursive: true });
  if (o.servers !== 1 && o.servers !== 3) throw new Error(`--servers must be 1 or 3, got ${o.servers}`);
  const ports: Array<[number, string]> = [
    ...Array.from({ length: o.servers }, (_, i): [number, string] => [o.port + i, '--port']),
    ...Array.from({ length: o.servers }, (_, i): [number, string] => [o.httpPort + i, '--http-port']),
    ...Array.from({ length: o.nodes }, (_, i): [number, string] => [o.nodeHttpPort + i, '--node-http-port']),
    ...Array.from({ length: o.nodes }, (_, i): [number, string] => [o.servicePort + i, '--service-port']),
  ];
  for (const [port, flag] of ports) {
    await assertPortFree('127.0.0.1', port).catch((err: Error) => {
      throw new Error(`${err.message} (use gc dev ${flag} to pick another)`, { cause: err });
    });
  }
  const routePorts = await Promise.all(Array.from({ length: o.servers }, () => freePort()));
  const servers = Array.from(
    { length: o.servers },
    (_, i) =>
      new NatsServerProcess({
        dir: o.servers === 1 ? natsDir : join(natsDir, `s${i + 1}`),
        config: {
          name: o.servers === 1 ? 'gc-dev' : `gc-dev-${i + 1}`,
          port: o.port + i,
          httpPort: o.httpPort + i,
          ...(o.servers > 1
            ? {
                cluster: {
                  name: 'gc-dev',
                  port: routePorts[i]!,
                  routes: routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`),
                },
              }
            : {}),
        },
      }),
  );
  const server = servers[0]!;
  const urls = servers.map((x) => x.url);
  o.logger.info('starting nats-server', { bin: server.bin, version: server.version, ports: urls });
  await Promise.all(servers.map((x) => x.start()));
  const stopServers = () => Promise.all(servers.map((x) => x.stop()));
  // A cluster answers JetStream requests only once its meta group has a leader: retry the checked connect.
  const nc = await (async () => {
    const deadline = performance.now() + 30_000;
    for (;;) {
      try {
        return await connect({ servers: urls, name: 'gc-dev' });
      } catch (err) {
        if (performance.now() > deadline) {
          await stopServers();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  })();
  const admin = createAdminClient(nc, o.platform);
  const restartServer = async (name: string, signal: NodeJS.Signals = 'SIGKILL', afterMs = 500) => {
    const x = servers.find((v) => v.config.name === name);
    if (!x)
      throw new Error(`no dev nats-server named ${name} (${servers.map((v) => v.config.name).join(', ')})`);
    await x.stop(signal);
    await new Promise((r) => setTimeout(r, afterMs));
    await x.start();
  };
  // `gc drill server-restart` against the dev cluster: restart one of its servers (gracefully, as an
  // operator's restart does). The answer goes out before the server stops: this connection may be on it.
  nc.subscribe(devRestartServerSubject(o.platform), {
    callback: (_err, m) => {
      let name: string | undefined;
      try {
        name = (JSON.parse(new TextDecoder().decode(m.data)) as { server?: string }).server;
      } catch {
        name = undefined;
      }
      const target = name ?? (servers.length === 1 ? servers[0]!.config.name : undefined);
      const known = servers.some((v) => v.config.name === target);
      m.respond(
        new TextEncoder().encode(
          JSON.stringify(
            known
              ? { ok: true, server: target }
              : {
                  ok: false,
                  error: `no dev nats-server named ${name ?? '(none given)'} (${servers.map((v) => v.config.name).join(', ')})`,
                },
          ),
        ),
      );
      if (!known) return;
      void nc
        .flush()
        .then(() => restartServer(target!, 'SIGTERM', 500))
        .then(
          () => o.logger.info('dev nats-server restarted for a drill', { server: target }),
          (err: unknown) =>
            o.logger.error('dev nats-server restart failed', { server: target, err: String(err) }),
        );
    },
  });
  const nodeIds = Array.from({ length: o.nodes }, (_, i) => `node-${String.fromCharCode(97 + i)}`);
  const procs = new Map<string, ChildProcess>();
  let closing = false;

  const startNode = (id: string, i: number) => {
    const cfg = join(root, 'nodes', `${id}.yaml`);
    writeFileSync(
      cfg,
      `platform: ${o.platform}\nnode: { id: ${id}, labels: { zone: zone-${i + 1} } }\nnats: { servers: [${urls.join(', ')}] }\n` +
        `http: { host: 127.0.0.1, port: ${o.nodeHttpPort + i} }\ndataDir: ${join(root, 'nodes', `${id}-data`)}\nlog: { level: info, format: json }\n` +
        devAppsConfig({
          dataDir: join(root, 'nodes', `${id}-data`),
          servicePort: o.servicePort + i,
          nodeId: id,
          replicas: o.servers,
        }),
    );
    const log = openSync(join(root, 'logs', `${id}.log`), 'a');
    const child = spawn(process.execPath, [binPath(), 'run', '-c', cfg], {
      stdio: ['ignore', log, log],
      env: { ...process.env },
    });
    closeSync(log);
    procs.set(id, child);
    writeFileSync(devPidFile(o.dir, id), `${child.pid}\n`);
    child.once('exit', (code, signal) => {
      // A crashed node's service runs in its own process group and would outlive it; on a real machine
      // that dies too, so the dev cluster plays the machine and stops it (see the platform README).
      const orphan = findListenerPid(o.servicePort + i);
      if (orphan) {
        try {
          process.kill(-orphan, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      if (closing) return;
      o.logger.warn('dev node exited', { node: id, code, signal, restartInMs: o.restartDelayMs });
      if (o.restartDelayMs > 0) setTimeout(() => !closing && startNode(id, i), o.restartDelayMs);
    });
  };
  nodeIds.forEach(startNode);

  const close = async () => {
    if (closing) return;
    closing = true;
    await Promise.all(
      [...procs.entries()].map(
        ([id, p]) =>
          new Promise<void>((res) => {
            rmSync(devPidFile(o.dir, id), { force: true });
            if (p.exitCode !== null || p.signalCode !== null) return res();
            const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
            p.once('exit', () => {
              clearTimeout(t);
              res();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    await nc.close().catch(() => undefined);
    await stopServers();
  };

  if (o.nodes > 0) {
    const deadline = performance.now() + o.readyTimeoutMs;
    for (;;) {
      const st = await admin.nodes(300);
      if (st.length === o.nodes && st.every((n) => n.apps.every((a) => a.mode === 'pool' || a.leader))) break;
      if (performance.now() > deadline) {
        await close();
        throw new Error(
          `the ${o.nodes} dev nodes did not come up within ${o.readyTimeoutMs} ms; see ${join(root, 'logs')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  return {
    url: server.url,
    urls,
    monitorUrl: `http://127.0.0.1:${o.httpPort}`,
    serverVersion: server.version,
    serverBin: server.bin,
    dashboardUrl: o.nodes > 0 ? `http://127.0.0.1:${o.nodeHttpPort}/` : undefined,
    nodeIds,
    serviceUrls: nodeIds.map((_, i) => `http://127.0.0.1:${o.servicePort + i}/`),
    admin,
    killLeader: (app) => killDevLeader(admin, o.dir, app),
    restartServer,
    close,
  };
}

/** SIGKILLs the dev node process that leads `app` (found with the admin API and the dev pid files). */
export async function killDevLeader(admin: AdminClient, dir: string, app: string): Promise<string> {
  const nodes = await admin.nodes(500);
  let leader: string | null = null;
  let epoch = -1;
  for (const n of nodes) {
    const a = n.apps.find((x) => x.name === app);
    if (a?.leader && a.epoch > epoch) {
      leader = a.leader;
      epoch = a.epoch;
    }
  }
  if (!leader)
    throw new Error(
      `app ${app} has no leader in the dev cluster (is gc dev running? apps: ${[...new Set(nodes.flatMap((n) => n.apps.map((a) => a.name)))].join(', ') || 'none'})`,
    );
  let pid: number;
  try {
    pid = Number(readFileSync(devPidFile(dir, leader), 'utf8').trim());
  } catch {
    throw new Error(`no pid file for ${leader} in ${resolve(dir, 'nodes')}: is it a node started by gc dev?`);
  }
  process.kill(pid, 'SIGKILL');
  return leader;
}
