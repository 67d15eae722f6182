import { Args } from '@oclif/core';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';
import { openSnapshots } from '../../snapshot-open.js';

export default class SnapshotDelete extends BaseCommand<typeof SnapshotDelete> {
  static override summary = 'Delete one snapshot of an app.';
  static override args = {
    app: appArg,
    name: Args.string({ required: true, description: 'snapshot name' }),
  };
  static override examples = ['<%= config.bin %> snapshot delete orders snap-0000000000000042'];

  async run(): Promise<{ app: string; deleted: string }> {
    const store = await openSnapshots(await this.nats(), this.flags.platform, this.args.app);
    if (!store) this.error(`app ${this.args.app} has no snapshots`, { exit: ExitCode.NotFound });
    const exists = (await store.list()).some((s) => s.name === this.args.name);
    if (!exists)
      this.error(
        `app ${this.args.app} has no snapshot ${this.args.name} (see gc snapshot list ${this.args.app})`,
        { exit: ExitCode.NotFound },
      );
    await store.delete(this.args.name);
    this.log(`deleted ${this.args.name}`);
    return { app: this.args.app, deleted: this.args.name };
  }
}
