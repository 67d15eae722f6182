import { createAdminClient } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { table } from '../../table.js';

export default class NodeList extends BaseCommand<typeof NodeList> {
  static override summary = 'List the nodes of a platform with their health, labels and apps.';
  static override examples = ['<%= config.bin %> node list', '<%= config.bin %> node list --json'];

  async run(): Promise<
    Array<{
      id: string;
      health: string;
      labels: Record<string, string>;
      apps: string[];
      server: string | undefined;
    }>
  > {
    const nodes = await createAdminClient(await this.nats(), this.flags.platform).nodes(this.flags.timeout);
    const out = nodes.map((n) => ({
      id: n.nodeId,
      health: n.health.state,
      labels: n.labels,
      apps: n.apps.map((a) => a.name),
      server: n.server.version,
    }));
    if (!out.length) {
      this.logToStderr(`no node of platform ${this.flags.platform} answered within ${this.flags.timeout} ms`);
      if (!this.jsonEnabled()) this.exit(ExitCode.NotFound);
      return out;
    }
    this.log(
      table(
        ['NODE', 'HEALTH', 'LABELS', 'APPS'],
        out.map((n) => [
          n.id,
          n.health,
          Object.entries(n.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          n.apps.join(','),
        ]),
      ),
    );
    return out;
  }
}
