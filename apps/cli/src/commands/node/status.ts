import { createAdminClient, type PlatformStatus } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { nodeArg } from '../../flags.js';
import { table } from '../../table.js';

export default class NodeStatus extends BaseCommand<typeof NodeStatus> {
  static override summary = "Show one node's full status: apps and roles, health checks, server.";
  static override args = { node: nodeArg };
  static override examples = ['<%= config.bin %> node status node-a --json'];

  async run(): Promise<PlatformStatus> {
    const nodes = await createAdminClient(await this.nats(), this.flags.platform).nodes(this.flags.timeout);
    const n = nodes.find((x) => x.nodeId === this.args.node);
    if (!n)
      this.error(
        `node ${this.args.node} of platform ${this.flags.platform} did not answer (known: ${nodes.map((x) => x.nodeId).join(', ') || 'none'})`,
        { exit: ExitCode.NotFound },
      );
    this.log(
      `node ${n.nodeId} · ${n.health.state} · nats-server ${n.server.version ?? '?'} · labels ${
        Object.entries(n.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '-'
      }`,
    );
    this.log(
      table(
        ['APP', 'MODE', 'ROLE', 'LEADER', 'EPOCH', 'HOOK FAILURES'],
        n.apps.map((a) => [a.name, a.mode, a.role, a.leader ?? '-', String(a.epoch), String(a.hookFailures)]),
      ),
    );
    this.log(
      table(
        ['CHECK', 'STATE', 'DETAIL'],
        n.health.checks.map((c) => [c.name, c.state, c.detail ?? '']),
      ),
    );
    return n;
  }
}
