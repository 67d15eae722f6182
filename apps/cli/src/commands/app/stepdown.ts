import { isGcError } from '@gc/core';
import { AdminErrorCode, createAdminClient } from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';
import { summarize } from '../../status-summary.js';

export default class AppStepdown extends BaseCommand<typeof AppStepdown> {
  static override summary = "Make an app's leader step down so a standby takes over now.";
  static override description =
    'The leader runs onPassive, releases its lease and cools down; a standby is elected at once. Waits (up to --timeout × 5) for the new leader and prints it.';
  static override args = { app: appArg };
  static override examples = ['<%= config.bin %> app stepdown orders'];

  async run(): Promise<{
    app: string;
    from: string;
    epoch: number;
    newLeader: string | null;
    newEpoch: number | null;
  }> {
    const admin = createAdminClient(await this.nats(), this.flags.platform);
    let r;
    try {
      r = await admin.stepDown(this.args.app, Math.max(this.flags.timeout, 2000));
    } catch (err) {
      this.error((err as Error).message, {
        exit: isGcError(err, AdminErrorCode.NoLeader) ? ExitCode.NotFound : ExitCode.Failed,
      });
    }
    this.log(`${r.node} stepped down from ${r.app} (epoch ${r.epoch})`);
    const deadline = performance.now() + this.flags.timeout * 5;
    let newLeader: string | null = null;
    let newEpoch: number | null = null;
    while (performance.now() < deadline) {
      const app = summarize(
        this.flags.platform,
        await admin.nodes(Math.min(this.flags.timeout, 500)),
      ).apps.find((a) => a.name === r.app);
      if (app?.leader && app.epoch > r.epoch) {
        newLeader = app.leader;
        newEpoch = app.epoch;
        break;
      }
    }
    this.log(
      newLeader
        ? `new leader: ${newLeader} (epoch ${newEpoch})`
        : 'no new leader yet (is a standby running?)',
    );
    return { app: r.app, from: r.node, epoch: r.epoch, newLeader, newEpoch };
  }
}
