import { isGcError } from '@gc/core';
import { AdminErrorCode, createAdminClient } from '@gc/platform';
import type { SnapshotInfo } from '@gc/snapshot';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';
import { summarize } from '../../status-summary.js';

export default class SnapshotCreate extends BaseCommand<typeof SnapshotCreate> {
  static override summary = "Ask an app's leader to snapshot its SQLite database now (consistent at a txid).";
  static override args = { app: appArg };
  static override examples = ['<%= config.bin %> snapshot create orders'];

  async run(): Promise<SnapshotInfo & { node: string }> {
    const admin = createAdminClient(await this.nats(), this.flags.platform);
    // Check first (quickly) that the app exists, has a leader and a database, so a wrong name does not wait.
    const app = summarize(this.flags.platform, await admin.nodes(this.flags.timeout)).apps.find(
      (a) => a.name === this.args.app,
    );
    if (!app)
      this.error(`no node of platform ${this.flags.platform} runs an app called ${this.args.app}`, {
        exit: ExitCode.NotFound,
      });
    if (!app.replication)
      this.error(`app ${this.args.app} has no replicated SQLite database (sqlite: in its config)`, {
        exit: ExitCode.NotFound,
      });
    if (!app.leader) this.error(`app ${this.args.app} has no leader right now`, { exit: ExitCode.NotFound });
    try {
      this.logToStderr(`asking the leader of ${this.args.app} for a snapshot…`);
      const info = await admin.snapshot(this.args.app, Math.max(this.flags.timeout, 120_000));
      this.log(
        `snapshot ${info.name} of ${this.args.app} at txid ${info.txid} (${info.sizeBytes} bytes) by ${info.node}`,
      );
      return info;
    } catch (err) {
      this.error((err as Error).message, {
        exit: isGcError(err, AdminErrorCode.NoLeader) ? ExitCode.NotFound : ExitCode.Failed,
      });
    }
  }
}
