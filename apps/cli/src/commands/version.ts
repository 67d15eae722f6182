import { Command } from '@oclif/core';
import { findNatsServer, natsServerVersion } from '@gc/nats-server';

export default class Version extends Command {
  static override summary = 'Print the gc version, the Node version and the nats-server gc dev would use.';
  static override enableJsonFlag = true;

  async run(): Promise<{
    gc: string;
    node: string;
    natsServer: string | null;
    natsServerBin: string | null;
  }> {
    await this.parse(Version);
    const bin = findNatsServer() ?? null;
    let natsServer: string | null = null;
    if (bin) {
      try {
        natsServer = natsServerVersion(bin);
      } catch (err) {
        this.warn(`cannot run ${bin}: ${(err as Error).message}`);
      }
    }
    const out = { gc: this.config.version, node: process.version, natsServer, natsServerBin: bin };
    this.log(
      `gc ${out.gc} (node ${out.node}, nats-server ${natsServer ?? 'not found: run scripts/setup.sh or set NATS_SERVER_BIN'})`,
    );
    return out;
  }
}
