import { BaseCommand, ExitCode } from '../../base.js';
import { partitionArg, ringAppArg } from '../../flags.js';
import { withAppRing } from '../../ring-open.js';

export default class RingUnpin extends BaseCommand<typeof RingUnpin> {
  static override summary =
    'Remove the pin of a partition of a ring-mode app (the coordinator may then move it back).';
  static override args = {
    app: ringAppArg,
    partition: partitionArg,
  };
  static override examples = ['<%= config.bin %> ring unpin cache 12'];

  async run(): Promise<{ app: string; partition: number }> {
    await withAppRing(this, await this.nats(), this.flags.platform, this.args.app, async (ring) => {
      try {
        await ring.unpin(this.args.partition);
      } catch (err) {
        this.error((err as Error).message, { exit: ExitCode.Failed });
      }
    });
    this.log(`partition ${this.args.partition} of ${this.args.app} unpinned`);
    return { app: this.args.app, partition: this.args.partition };
  }
}
