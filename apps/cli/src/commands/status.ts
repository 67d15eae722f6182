import { createAdminClient, type PlatformStatus } from '@gc/platform';
import { BaseCommand, ExitCode } from '../base.js';

/** `gc status --json` shape. */
export interface StatusJson {
  platform: string;
  nodes: Array<{ id: string; labels: Record<string, string>; health: string; server: string | undefined }>;
  apps: Array<{
    name: string;
    mode: string;
    leader: string | null;
    epoch: number;
    roles: Record<string, string>;
  }>;
}

export function summarize(platform: string, nodes: PlatformStatus[]): StatusJson {
  const apps = new Map<string, StatusJson['apps'][number]>();
  for (const n of nodes) {
    for (const a of n.apps) {
      const entry = apps.get(a.name) ?? { name: a.name, mode: a.mode, leader: null, epoch: 0, roles: {} };
      entry.roles[n.nodeId] = a.role;
      if (a.epoch >= entry.epoch && a.leader) {
        entry.leader = a.leader;
        entry.epoch = a.epoch;
      }
      apps.set(a.name, entry);
    }
  }
  return {
    platform,
    nodes: nodes.map((n) => ({
      id: n.nodeId,
      labels: n.labels,
      health: n.health.state,
      server: n.server.version,
    })),
    apps: [...apps.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
}

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show the nodes of a platform and the leader of each app.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --platform prod --json'];

  async run(): Promise<StatusJson> {
    const nc = await this.nats();
    const nodes = await createAdminClient(nc, this.flags.platform).nodes(this.flags.timeout);
    const out = summarize(this.flags.platform, nodes);
    if (nodes.length === 0) {
      this.logToStderr(
        `no node of platform ${this.flags.platform} answered within ${this.flags.timeout} ms (is gc running with that platform name?)`,
      );
      if (!this.jsonEnabled()) this.exit(ExitCode.NotFound);
      return out;
    }
    this.log(`platform ${out.platform}: ${out.nodes.length} node(s)`);
    for (const n of out.nodes) {
      this.log(
        `  ${n.id.padEnd(16)} ${n.health.padEnd(10)} ${Object.entries(n.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`,
      );
    }
    this.log('apps:');
    for (const a of out.apps) {
      const roles = Object.entries(a.roles)
        .map(([n, r]) => `${n}:${r}`)
        .join(' ');
      this.log(
        `  ${a.name.padEnd(16)} ${a.mode.padEnd(15)} leader=${a.leader ?? '-'} epoch=${a.epoch}  ${roles}`,
      );
    }
    return out;
  }
}
