import { ChaosProxy } from './proxy.js';
import { freePort } from './ports.js';
import { NatsServer, type ServerOptions } from './server.js';
import { waitFor } from './wait.js';

/** Options of {@link startHubLeaf}. */
export interface HubLeafOptions {
  /** JetStream domain of the hub. Default `hub`. */
  hubDomain?: string;
  /** JetStream domain of the leaf. Default `leaf`. */
  leafDomain?: string;
  /** Put a {@link ChaosProxy} on the leaf ↔ hub link. Default true. */
  linkProxy?: boolean;
  /** Options applied to both servers. */
  server?: Omit<ServerOptions, 'name' | 'domain' | 'leafListenPort' | 'leafRemotes'>;
}

/** A hub server and a leaf server connected as a leaf node, each with its own JetStream domain. */
export class HubLeaf {
  constructor(
    readonly hub: NatsServer,
    readonly leaf: NatsServer,
    /** The proxy on the leaf link, when `linkProxy` is on. */
    readonly link: ChaosProxy | undefined,
  ) {}

  /** Waits until the hub sees the leaf connection. */
  async waitLinked(timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => ((await this.hub.monitor<{ leafnodes?: number }>('leafz')).leafnodes ?? 0) > 0,
      {
        timeoutMs,
        intervalMs: 50,
        message: 'leaf node connected to the hub',
      },
    );
  }

  /** Waits until the hub no longer sees the leaf connection. */
  async waitUnlinked(timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => ((await this.hub.monitor<{ leafnodes?: number }>('leafz')).leafnodes ?? 0) === 0,
      {
        timeoutMs,
        intervalMs: 50,
        message: 'leaf node disconnected from the hub',
      },
    );
  }

  /** Stops both servers and the proxy. */
  async close(): Promise<void> {
    await Promise.allSettled([this.leaf.close(), this.hub.close(), this.link?.close()]);
  }
}

/**
 * Starts a hub and a leaf (own JetStream domains) and waits until the leaf is connected.
 *
 * @example
 * const { hub, leaf, link } = await startHubLeaf();
 * link?.cut(); // partition the zones
 */
export async function startHubLeaf(opts: HubLeafOptions = {}): Promise<HubLeaf> {
  const leafPort = await freePort();
  const hub = await NatsServer.start({
    ...opts.server,
    name: 'hub',
    domain: opts.hubDomain ?? 'hub',
    leafListenPort: leafPort,
  });
  let link: ChaosProxy | undefined;
  try {
    link = opts.linkProxy === false ? undefined : await ChaosProxy.start({ target: { port: leafPort } });
    const remote = `nats-leaf://127.0.0.1:${link ? link.port : leafPort}`;
    const leaf = await NatsServer.start({
      ...opts.server,
      name: 'leaf',
      domain: opts.leafDomain ?? 'leaf',
      leafRemotes: [remote],
    });
    const pair = new HubLeaf(hub, leaf, link);
    await pair.waitLinked();
    return pair;
  } catch (err) {
    await Promise.allSettled([hub.close(), link?.close()]);
    throw err;
  }
}
