import { createAdminClient } from '@gc/platform';
import { BaseCommand, ExitCode } from '../base.js';
import { table } from '../table.js';

export default class Health extends BaseCommand<typeof Health> {
  static override summary = "Show every node's health; exits 1 when any node is unhealthy.";
  static override examples = ['<%= config.bin %> health', '<%= config.bin %> health --json'];

  async run(): Promise<{
    healthy: boolean;
    nodes: Array<{ id: string; state: string; ready: boolean; failing: string[] }>;
  }> {
    const nodes = await createAdminClient(await this.nats(), this.flags.platform).nodes(this.flags.timeout);
    const out = nodes.map((n) => ({
      id: n.nodeId,
      state: n.health.state,
      ready: n.health.ready,
      failing: n.health.checks
        .filter((c) => c.state !== 'healthy')
        .map((c) => `${c.name}: ${c.detail ?? c.state}`),
    }));
    const healthy = out.length > 0 && out.every((n) => n.state !== 'unhealthy');
    if (!out.length)
      this.logToStderr(`no node of platform ${this.flags.platform} answered within ${this.flags.timeout} ms`);
    this.log(
      table(
        ['NODE', 'STATE', 'READY', 'FAILING'],
        out.map((n) => [n.id, n.state, String(n.ready), n.failing.join('; ')]),
      ),
    );
    if (!healthy) process.exitCode = out.length ? ExitCode.Failed : ExitCode.NotFound;
    return { healthy, nodes: out };
  }
}
