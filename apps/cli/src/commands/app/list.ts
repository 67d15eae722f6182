import { createAdminClient } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { summarize, type StatusJson } from '../../status-summary.js';
import { table } from '../../table.js';

export default class AppList extends BaseCommand<typeof AppList> {
  static override summary = 'List the apps of a platform with their mode, leader and epoch.';
  static override examples = ['<%= config.bin %> app list --json'];

  async run(): Promise<StatusJson['apps']> {
    const nodes = await createAdminClient(await this.nats(), this.flags.platform).nodes(this.flags.timeout);
    const { apps } = summarize(this.flags.platform, nodes);
    if (!nodes.length) {
      this.logToStderr(`no node of platform ${this.flags.platform} answered within ${this.flags.timeout} ms`);
      if (!this.jsonEnabled()) this.exit(ExitCode.NotFound);
    }
    this.log(
      table(
        ['APP', 'MODE', 'LEADER', 'EPOCH', 'NODES'],
        apps.map((a) => [
          a.name,
          a.mode,
          a.leader ?? '-',
          String(a.epoch),
          Object.entries(a.roles)
            .map(([n, r]) => `${n}:${r}`)
            .join(' '),
        ]),
      ),
    );
    return apps;
  }
}
