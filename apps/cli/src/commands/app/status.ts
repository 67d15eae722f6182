import { createAdminClient } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';
import { isBroken, summarize, type StatusJson } from '../../status-summary.js';
import { table } from '../../table.js';

export default class AppStatus extends BaseCommand<typeof AppStatus> {
  static override summary =
    'Show one app: mode, leader, epoch, its role on every node and, with a database, replication per node (txid, lag, state and why it is broken); exits 1 when replication is broken on a node.';
  static override args = { app: appArg };
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
    const repl = app.replication ?? {};
    const hasDb = Object.keys(repl).length > 0;
    this.log(
      table(
        hasDb ? ['NODE', 'ROLE', 'DB', 'TXID', 'LAG', 'STATE', 'WHY'] : ['NODE', 'ROLE'],
        Object.entries(app.roles).map(([n, r]) => {
          const x = repl[n];
          if (!hasDb) return [n, r];
          if (!x) return [n, r, '-', '-', '-', '-', ''];
          return [
            n,
            r,
            x.role,
            String(x.txid),
            x.role === 'replica' ? `${x.lagTx} tx / ${Math.round(x.lagMs / 1000)} s` : '-',
            x.state,
            x.reason ?? '',
          ];
        }),
      ),
    );
    const broken = Object.entries(repl).filter(([, x]) => isBroken(x));
    if (broken.length) {
      this.logToStderr(
        `replication of ${app.name} is broken on ${broken.map(([n]) => n).join(', ')} (see STATE and WHY)`,
      );
      process.exitCode = ExitCode.Failed;
    }
    return app;
  }
}
