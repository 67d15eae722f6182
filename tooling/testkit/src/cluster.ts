import { connect } from '@nats-io/transport-node';
import { ChaosProxy } from './proxy.js';
import { freePort } from './ports.js';
import { NatsServer, type ServerOptions } from './server.js';
import { waitFor } from './wait.js';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of servers. Default 3. */
  size?: number;
  /** Cluster name. Default `gc-test`. */
  name?: string;
  /**
   * Put a {@link ChaosProxy} in front of every server's route port (servers advertise the proxy), so
   * that {@link Cluster.isolate} can partition one server from the others. Default false.
   */
  routeProxies?: boolean;
  /** Options applied to every server (name, port and cluster are set by the cluster). */
  server?: Omit<ServerOptions, 'name' | 'port' | 'cluster'>;
  /** How long to wait for the JetStream meta group to elect a leader, in ms. Default 30000. */
  readyTimeoutMs?: number;
}

interface JszMeta {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

/** A JetStream cluster of real nats-server processes on loopback. */
export class Cluster {
  readonly servers: NatsServer[];
  /** Route proxies, one per server, when `routeProxies` was set. */
  readonly routeProxies: ChaosProxy[];

  constructor(servers: NatsServer[], proxies: ChaosProxy[]) {
    this.servers = servers;
    this.routeProxies = proxies;
  }

  /** Every server's client URL. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** Waits until a JetStream meta leader is known to every running server. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const s of this.servers.filter((x) => x.running)) {
          const jsz = await s.monitor<JszMeta>('jsz');
          if (!jsz.meta_cluster?.leader) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, message: 'JetStream meta leader in the cluster' },
    );
    // A known meta leader is not yet a JetStream API that answers: for a moment after it, requests get
    // "jetstream is not enabled". Wait until every running server answers `$JS.API.INFO` without an error.
    const started = performance.now();
    for (const s of this.servers.filter((x) => x.running)) {
      const nc = await connect({ servers: s.url, name: 'testkit-ready' });
      try {
        await waitFor(
          async () => {
            const m = await nc.request('$JS.API.INFO', undefined, { timeout: 1000 }).catch(() => undefined);
            if (!m) return false;
            const r = JSON.parse(new TextDecoder().decode(m.data)) as { error?: unknown };
            return r.error === undefined;
          },
          {
            timeoutMs: Math.max(1000, timeoutMs - (performance.now() - started)),
            intervalMs: 100,
            message: `JetStream API answering on ${s.url}`,
          },
        );
      } finally {
        await nc.close();
      }
    }
  }

  /** The server currently leading the JetStream meta group. */
  async metaLeader(): Promise<NatsServer | undefined> {
    for (const s of this.servers.filter((x) => x.running)) {
      const jsz = await s.monitor<JszMeta>('jsz').catch(() => undefined);
      const leader = jsz?.meta_cluster?.leader;
      if (leader) return this.servers.find((x) => x.name === leader);
    }
    return undefined;
  }

  /**
   * Cuts every route link to and from server `i` (needs `routeProxies`): its own proxy refuses all
   * links, and the other proxies refuse the links server `i` opened (recognised by its server id).
   */
  async isolate(i: number): Promise<void> {
    if (this.routeProxies.length === 0)
      throw new Error('isolate() needs startCluster({ routeProxies: true })');
    const { server_id: id } = await this.servers[i]!.monitor<{ server_id: string }>('varz');
    this.routeProxies[i]!.cut();
    this.routeProxies.forEach((p, j) => {
      if (j !== i) p.cut((link) => link.peer === id);
    });
  }

  /** Heals every route proxy. */
  healRoutes(): void {
    for (const p of this.routeProxies) p.heal();
  }

  /** Stops every server and proxy and deletes their dirs. */
  async close(): Promise<void> {
    await Promise.allSettled([
      ...this.servers.map((s) => s.close()),
      ...this.routeProxies.map((p) => p.close()),
    ]);
  }
}

/**
 * Starts a JetStream cluster (3 servers by default) and waits for its meta leader.
 *
 * @example
 * const cluster = await startCluster();
 * const nc = await connect({ servers: cluster.urls });
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const size = opts.size ?? 3;
  const name = opts.name ?? 'gc-test';
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const proxies = opts.routeProxies
    ? await Promise.all(routePorts.map((port) => ChaosProxy.start({ target: { port }, sniffPeer: true })))
    : [];
  const routeAddr = (i: number) => (proxies.length ? proxies[i]!.port : routePorts[i]!);
  const servers: NatsServer[] = [];
  try {
    const started = await Promise.all(
      routePorts.map((port, i) =>
        NatsServer.start({
          ...opts.server,
          name: `n${i + 1}`,
          cluster: {
            name,
            port,
            routes: routePorts
              .map((_, j) => j)
              .filter((j) => j !== i)
              .map((j) => `nats-route://127.0.0.1:${routeAddr(j)}`),
            ...(proxies.length ? { advertise: `127.0.0.1:${proxies[i]!.port}` } : {}),
          },
        }),
      ),
    );
    servers.push(...started);
    const cluster = new Cluster(servers, proxies);
    if (opts.server?.jetstream !== false) await cluster.waitReady(opts.readyTimeoutMs ?? 30_000);
    return cluster;
  } catch (err) {
    await Promise.allSettled([...servers.map((s) => s.close()), ...proxies.map((p) => p.close())]);
    throw err;
  }
}
