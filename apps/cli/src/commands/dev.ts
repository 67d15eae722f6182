import { Command, Flags } from '@oclif/core';
import { createLogger } from '@gc/core';
import { startDevCluster } from '../dev.js';

export default class Dev extends Command {
  static override summary = 'Start a local gc development cluster: an embedded nats-server with JetStream.';
  static override description = `Starts nats-server (the one provisioned by scripts/setup.sh, or NATS_SERVER_BIN) with JetStream,
checks it is healthy (version >= 2.10, JetStream enabled) and keeps running until Ctrl-C, then stops
everything it started. The server's store is kept in --dir between runs.`;
  static override examples = [
    '<%= config.bin %> dev',
    '<%= config.bin %> dev --port 4333 --http-port 8333',
    '<%= config.bin %> dev --check',
  ];
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
    dir: Flags.string({
      description: 'folder for the dev cluster state (server store, logs)',
      default: '.gc-dev',
    }),
    check: Flags.boolean({
      description: 'start, report health, stop and exit (for scripts and CI)',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Dev);
    const logger = createLogger({ name: 'gc-dev' });
    let cluster;
    try {
      cluster = await startDevCluster({
        port: flags.port,
        httpPort: flags['http-port'],
        dir: flags.dir,
        logger,
      });
    } catch (err) {
      this.error((err as Error).message, { exit: 1 });
    }
    this.log(
      `nats-server ${cluster.serverVersion} is healthy at ${cluster.url} (JetStream on, monitoring ${cluster.monitorUrl})`,
    );
    this.log(`binary: ${cluster.serverBin}`);
    if (flags.check) {
      await cluster.close();
      this.log('check passed: stopped the dev cluster');
      return;
    }
    this.log('gc dev is running; press Ctrl-C to stop');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    this.log('stopping the dev cluster');
    await cluster.close();
  }
}
