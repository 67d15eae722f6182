import { Args } from '@oclif/core';
import { createAdminClient } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { summarize, type StatusJson } from '../../status-summary.js';
import { table } from '../../table.js';

export default class AppStatus extends BaseCommand<typeof AppStatus> {
  static override summary = 'Show one app: mode, leader, epoch and its role on every node.';
  static override args = { app: Args.string({ description: 'app name', required: true }) };
  static override examples = ['<%= config.bin %> app status orders'];

  async run(): Promise<StatusJson['apps'][number]> {
    const nodes = await createAdminClient(await this.nats(), this.flags.platform).nodes(this.flags.timeout);
    const app = summarize(this.flags.platform, nodes).apps.find((a) => a.name === this.args.app);
    if (!app)
      this.error(`no node of platform ${this.flags.platform} runs an app called ${this.args.app}`, {
        exit: ExitCode.NotFound,
      });
    this.log(
      `${app.name} · ${app.mode}${app.mode === 'active-passive' ? ` · leader ${app.leader ?? '-'} · epoch ${app.epoch}` : ''}`,
    );
    this.log(
      table(
        ['NODE', 'ROLE'],
        Object.entries(app.roles).map(([n, r]) => [n, r]),
      ),
    );
    return app;
  }
}
