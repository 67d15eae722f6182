import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Logger, silentLogger } from '@gc/core';
import { NatsServerProcess, assertPortFree, freePort } from '@gc/nats-server';
import { createAdminClient, devRestartServerSubject, type AdminClient } from '@gc/platform';
import {
  findListenerPid,
  processBackend,
  type Backend,
  type BackendEvent,
  type RestartPolicy,
} from '@gc/backends';
import { devNodeConfig } from './dev-node-config.js';
import { devPidFile, devRestartPolicy, killDevLeader } from './dev-node-process.js';

export { devAppsConfig, devNodeConfig, type DevNodeConfigInput } from './dev-node-config.js';
export { devPidFile, devRestartPolicy, killDevLeader } from './dev-node-process.js';

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
  /**
   * Restart a node process that died, after this many ms (0: never), doubling for each further restart
   * within a minute (up to 10 s). Default 2000.
   */
  restartDelayMs: number;
  /**
   * Overrides of the node supervisor's restart policy (`@gc/backends`), which {@link devRestartPolicy}
   * derives from `restartDelayMs`: by default a node that died 5 times within a minute is given up on (see
   * its log). `gc dev --chaos`, which kills leaders on purpose, turns the backoff and the limit off.
   */
  restart: Partial<RestartPolicy>;
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
    restart: {},
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

const binPath = (): string => fileURLToPath(new URL('../bin/run.js', import.meta.url));

/**
 * Starts the embedded nats-server (JetStream on, store kept in `dir`), checks it with the same
 * `connect()` every gc node uses, then runs `nodes` local `gc run` processes with the example apps and
 * restarts any that dies. The first node serves the dashboard.
 */
export async function startDevCluster(opts: Partial<DevClusterOptions> = {}): Promise<DevCluster> {
  const o = { ...defaultDevClusterOptions(), ...opts };
  const root = resolve(o.dir);
  const natsDir = join(root, 'nats');
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
  // Only once the options are known to work: a refused start leaves no state folder behind.
  mkdirSync(join(root, 'nodes'), { recursive: true });
  mkdirSync(join(root, 'logs'), { recursive: true });
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
  const policy = devRestartPolicy(o.restartDelayMs, o.restart);
  // Each node is a `gc run` process supervised by the process backend of @gc/backends: its own process
  // group, output appended to logs/<node>.log, restarted by `policy` (backoff, crash-loop limit).
  const nodes: Backend[] = [];
  let closing = false;
  const onNodeEvent = (id: string, i: number) => (e: BackendEvent) => {
    switch (e.type) {
      case 'started':
        writeFileSync(devPidFile(o.dir, id), `${e.pid}\n`);
        break;
      case 'exited': {
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
        if (!closing) o.logger.warn('dev node exited', { node: id, code: e.exitCode, signal: e.signal });
        break;
      }
      case 'restarting':
        o.logger.info('restarting dev node', { node: id, attempt: e.attempt, inMs: e.delayMs });
        break;
      case 'gave-up':
        rmSync(devPidFile(o.dir, id), { force: true });
        o.logger.error(
          `dev node ${id} keeps dying: not restarting it (see ${join(root, 'logs', `${id}.log`)})`,
          {
            node: id,
            restarts: e.restarts,
            reason: e.reason,
          },
        );
        break;
    }
  };

  const close = async () => {
    if (closing) return;
    closing = true;
    await Promise.all(
      nodes.map(async (b, i) => {
        rmSync(devPidFile(o.dir, nodeIds[i]!), { force: true });
        await b
          .close()
          .catch((err: unknown) =>
            o.logger.error('dev node did not stop', { node: nodeIds[i], err: String(err) }),
          );
      }),
    );
    // Stopping: the nodes are stopped above; a failed close loses nothing.
    await nc.close().catch(() => undefined);
    await stopServers();
  };

  try {
    for (const [i, id] of nodeIds.entries()) {
      const dataDir = join(root, 'nodes', `${id}-data`);
      const cfg = join(root, 'nodes', `${id}.yaml`);
      writeFileSync(
        cfg,
        devNodeConfig({
          platform: o.platform,
          nodeId: id,
          zone: `zone-${i + 1}`,
          servers: urls,
          httpPort: o.nodeHttpPort + i,
          dataDir,
          servicePort: o.servicePort + i,
          replicas: o.servers,
        }),
      );
      const node = await processBackend.create(
        {
          command: process.execPath,
          args: [binPath(), 'run', '-c', cfg],
          logFile: join(root, 'logs', `${id}.log`),
          logBufferLines: 100,
          graceMs: 10_000,
          restart: policy,
          health: { type: 'none' },
        },
        { name: id, onEvent: onNodeEvent(id, i) },
      );
      nodes.push(node);
      await node.start();
    }
  } catch (err) {
    await close();
    throw err;
  }

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
