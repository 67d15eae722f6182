import { Flags } from '@oclif/core';
import { isGcError } from '@gc/core';
import { AdminErrorCode, createAdminClient, type RecoverResult } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';

export default class AppRecover extends BaseCommand<typeof AppRecover> {
  static override summary =
    "Publish one node's copy of an app's database when no node can prove it is current.";
  static override description = [
    "gc never publishes a database that is not proven to be the replicated history's tip: a node whose copy is",
    'behind catches up from a snapshot and the stream instead. When the WAL stream and every snapshot are gone',
    '(deleted by hand, or a store lost), no node can prove that, the app stays without an active leader and',
    '`gc health` says `promotion refused (history-lost)`. This command lets the node given by --from publish its',
    'copy the next time it is elected, as the new history; whatever other copies hold beyond it is discarded.',
    'Check `gc app status <app>` first (each node shows the txid of its copy) and pick the most recent one.',
    'The decision and --reason go to the audit trail.',
  ].join(' ');
  static override args = { app: appArg };
  static override flags = {
    from: Flags.string({ description: 'node whose copy becomes the truth', required: true }),
    reason: Flags.string({ description: 'why (recorded in the audit trail)', required: true }),
    yes: Flags.boolean({
      description: 'confirm: this discards what other copies hold beyond this one',
      default: false,
    }),
  };
  static override examples = [
    '<%= config.bin %> app recover orders --from node-b --reason "stream and snapshots deleted by mistake" --yes',
  ];

  async run(): Promise<RecoverResult> {
    if (!this.flags.yes) {
      this.error(
        `refusing without --yes: publishing ${this.flags.from}'s copy of ${this.args.app} discards whatever other nodes' copies hold beyond it`,
        { exit: ExitCode.Failed },
      );
    }
    const admin = createAdminClient(await this.nats(), this.flags.platform);
    let r: RecoverResult;
    try {
      r = await admin.recover(
        this.args.app,
        this.flags.from,
        this.flags.reason,
        Math.max(this.flags.timeout, 2000),
      );
    } catch (err) {
      this.error((err as Error).message, {
        exit: isGcError(err, AdminErrorCode.NoLeader) ? ExitCode.NotFound : ExitCode.Failed,
      });
    }
    this.log(
      `${r.node} will publish its copy of ${r.app}${r.replication ? ` (txid ${r.replication.txid}, ${r.replication.state})` : ''} the next time it is elected; follow with \`gc app status ${r.app}\``,
    );
    return r;
  }
}
