import { createAdminClient } from '@gc/platform';
import { isBroken, summarize, type StatusJson } from '../status-summary.js';
import { BaseCommand, ExitCode } from '../base.js';

export default class Status extends BaseCommand<typeof Status> {
  static override summary =
    'Show the nodes of a platform and the leader of each app, and any node whose replication is broken (exit 1 then).';
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
    let broken = false;
    for (const a of out.apps) {
      const roles = Object.entries(a.roles)
        .map(([n, r]) => `${n}:${r}`)
        .join(' ');
      this.log(
        `  ${a.name.padEnd(16)} ${a.mode.padEnd(15)} leader=${a.leader ?? '-'} epoch=${a.epoch}  ${roles}`,
      );
      if (a.placement) {
        const entries = Object.entries(a.placement);
        const on = entries.filter(([, p]) => p.placed).map(([n]) => n);
        const off = entries.filter(([, p]) => !p.placed);
        const unsat = off.find(([, p]) => p.reason.startsWith('unsatisfiable'));
        if (unsat) {
          // Declared, but no node may run it: it runs nowhere.
          this.log(`    ! ${unsat[1].reason}`);
          broken = true;
        } else
          this.log(
            `    placed on ${on.join(',') || 'no node yet'}${off.length ? `; not on ${off.map(([n, p]) => `${n} (${p.reason})`).join(', ')}` : ''}`,
          );
      }
      for (const [node, r] of Object.entries(a.replication ?? {})) {
        if (!isBroken(r)) continue;
        this.log(`    ! ${node}: replication ${r.state} at txid ${r.txid}: ${r.reason ?? 'unknown'}`);
        broken = true;
      }
    }
    if (broken) process.exitCode = ExitCode.Failed;
    return out;
  }
}
