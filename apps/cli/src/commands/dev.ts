import { spawn } from 'node:child_process';
import { Args, Command, Flags } from '@oclif/core';
import { connect, createLogger, isGcError } from '@gc/core';
import { createAdminClient } from '@gc/platform';
import { killDevLeader, startDevCluster } from '../dev.js';

export default class Dev extends Command {
  static override summary =
    'Run a local gc cluster: an embedded nats-server, three nodes, example apps and the dashboard.';
  static override description = `Starts nats-server (the one provisioned by scripts/setup.sh, or NATS_SERVER_BIN) with JetStream,
then three local nodes (each a "gc run" process) running the example apps: "orders" (active-passive)
and "workers" (pool). Prints the dashboard URL and keeps running until Ctrl-C, then stops everything it
started. A node that dies is restarted after 2 s, waiting twice as long for each further restart within a
minute (up to 10 s); one that died 5 times within a minute is given up on (its log in --dir/logs says why).
With --chaos the restarts stay at 2 s and are never given up.

"gc dev kill --app orders" (from another shell) SIGKILLs the current leader's process so you can watch
the failover on the dashboard; "gc dev --chaos" does that every few seconds by itself.`;
  static override examples = [
    '<%= config.bin %> dev',
    '<%= config.bin %> dev --chaos',
    '<%= config.bin %> dev kill --app orders',
    '<%= config.bin %> dev --nodes 0 --check',
  ];
  static override args = {
    action: Args.string({
      description: 'kill: SIGKILL the leader of --app in a running gc dev',
      options: ['kill'],
      required: false,
    }),
  };
  static override flags = {
    port: Flags.integer({
      description: 'client port of the embedded nats-server',
      default: 4222,
      min: 1,
      max: 65535,
    }),
    'http-port': Flags.integer({
      description: 'monitoring port of the embedded nats-server',
      default: 8222,
      min: 1,
      max: 65535,
    }),
    'node-http-port': Flags.integer({
      description: 'HTTP port of the first node (dashboard); the others use the next ports',
      default: 8081,
      min: 1,
      max: 65000,
    }),
    'service-port': Flags.integer({
      description: 'port of the example orders service on the first node; the others use the next ports',
      default: 8091,
      min: 1,
      max: 65000,
    }),
    nodes: Flags.integer({ description: 'local nodes to run', default: 3, min: 0, max: 9 }),
    servers: Flags.integer({
      description:
        'nats-servers: 1, or 3 as a local JetStream cluster (ports --port, +1, +2) with every bucket and stream replicated 3 times',
      default: 1,
      min: 1,
      max: 3,
    }),
    dir: Flags.string({
      description: 'folder for the dev cluster state (server store, node configs, logs)',
      default: '.gc-dev',
    }),
    chaos: Flags.boolean({
      description: 'kill a random app leader every --chaos-interval ms',
      default: false,
    }),
    'chaos-interval': Flags.integer({ description: 'ms between chaos kills', default: 8000, min: 1000 }),
    app: Flags.string({ description: 'app whose leader "gc dev kill" kills', default: 'orders' }),
    open: Flags.boolean({ description: 'open the dashboard in a browser (xdg-open)', default: false }),
    check: Flags.boolean({
      description: 'start, report health, stop and exit (for scripts and CI)',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Dev);
    if (args.action === 'kill') return this.kill(flags);
    const logger = createLogger({ name: 'gc-dev' });
    let cluster;
    try {
      cluster = await startDevCluster({
        port: flags.port,
        httpPort: flags['http-port'],
        nodeHttpPort: flags['node-http-port'],
        servicePort: flags['service-port'],
        nodes: flags.nodes,
        servers: flags.servers,
        dir: flags.dir,
        // Chaos kills leaders on purpose: that is no crash loop to back off from or give up on.
        ...(flags.chaos ? { restart: { factor: 1, maxRestarts: Number.POSITIVE_INFINITY } } : {}),
        logger,
      });
    } catch (err) {
      this.error((err as Error).message, { exit: 1 });
    }
    this.log(
      cluster.urls.length > 1
        ? `${cluster.urls.length} nats-servers ${cluster.serverVersion} form a JetStream cluster at ${cluster.urls.join(', ')} (monitoring ${cluster.monitorUrl} and the next ports)`
        : `nats-server ${cluster.serverVersion} is healthy at ${cluster.url} (JetStream on, monitoring ${cluster.monitorUrl})`,
    );
    this.log(`binary: ${cluster.serverBin}`);
    if (cluster.dashboardUrl) {
      this.log(
        `${cluster.nodeIds.length} nodes running: ${cluster.nodeIds.join(', ')} (logs in ${flags.dir}/logs)`,
      );
      this.log(`dashboard: ${cluster.dashboardUrl}`);
      this.log(
        `orders service (runs on the leader only, data in replicated SQLite): ${cluster.serviceUrls.join(' | ')}`,
      );
      this.log(`try: gc status --server ${cluster.url} --platform dev   |   gc dev kill --app orders`);
      if (flags.open) this.open(cluster.dashboardUrl);
    }
    if (flags.check) {
      await cluster.close();
      this.log('check passed: stopped the dev cluster');
      return;
    }
    let chaos: ReturnType<typeof setInterval> | undefined;
    if (flags.chaos) {
      this.log(`chaos: killing a random leader every ${flags['chaos-interval']} ms`);
      chaos = setInterval(() => {
        cluster
          .killLeader('orders')
          .then((node) => this.log(`chaos: killed ${node}, the leader of orders`))
          .catch((err: unknown) => this.warn(`chaos: ${(err as Error).message}`));
      }, flags['chaos-interval']);
    }
    this.log('gc dev is running; press Ctrl-C to stop');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    if (chaos) clearInterval(chaos);
    this.log('stopping the dev cluster');
    await cluster.close();
  }

  private async kill(flags: { port: number; dir: string; app: string }): Promise<void> {
    let nc;
    try {
      nc = await connect({
        servers: `nats://127.0.0.1:${flags.port}`,
        name: 'gc-dev-kill',
        reconnectForever: false,
        maxReconnectAttempts: 0,
      });
    } catch (err) {
      this.error(`${isGcError(err) ? err.message : String(err)} (is gc dev running?)`, { exit: 3 });
    }
    try {
      const node = await killDevLeader(createAdminClient(nc, 'dev'), flags.dir, flags.app);
      this.log(`killed ${node}, the leader of ${flags.app} (gc dev restarts it)`);
    } catch (err) {
      this.error((err as Error).message, { exit: 4 });
    } finally {
      await nc.close();
    }
  }

  private open(url: string): void {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.on('error', () => this.warn(`cannot open a browser here (no xdg-open); open ${url} yourself`));
    child.unref();
  }
}
