import { existsSync, writeFileSync } from 'node:fs';
import { Command, Flags } from '@oclif/core';
import { hostname } from 'node:os';
import { starterConfig } from '../config.js';

export default class Init extends Command {
  static override summary = 'Write a commented starter config file.';
  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --config /etc/gc/gc.yaml --platform prod --node-id node-a',
  ];
  static override flags = {
    config: Flags.string({ char: 'c', description: 'where to write it', default: 'gc.yaml' }),
    platform: Flags.string({ description: 'platform name', default: 'dev' }),
    'node-id': Flags.string({
      description: 'this node id',
      default: hostname()
        .replace(/[^A-Za-z0-9_-]/g, '-')
        .slice(0, 64),
    }),
    server: Flags.string({ description: 'NATS URL', default: 'nats://127.0.0.1:4222' }),
    force: Flags.boolean({ description: 'overwrite an existing file', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Init);
    if (existsSync(flags.config) && !flags.force)
      this.error(`${flags.config} already exists; pass --force to overwrite it`, { exit: 1 });
    writeFileSync(
      flags.config,
      starterConfig({ platform: flags.platform, nodeId: flags['node-id'], natsUrl: flags.server }),
    );
    this.log(`wrote ${flags.config}; check it with: gc run --config ${flags.config} --check`);
  }
}
