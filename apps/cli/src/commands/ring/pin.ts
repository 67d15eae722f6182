import { Args } from '@oclif/core';
import { isGcError } from '@gc/core';
import { RingErrorCode } from '@gc/ring';
import { BaseCommand, ExitCode } from '../../base.js';
import { partitionArg, ringAppArg } from '../../flags.js';
import { withAppRing } from '../../ring-open.js';

export default class RingPin extends BaseCommand<typeof RingPin> {
  static override summary =
    'Pin a partition of a ring-mode app to a member: the coordinator moves it there and keeps it there.';
  static override description =
    'The pin holds while the node is a member (a pin to a node that left is ignored until it returns). The move is a normal hand-off: onRelease on the old owner, onOwn on the new one, calls held meanwhile. Audited as ring.pin.';
  static override args = {
    app: ringAppArg,
    partition: partitionArg,
    node: Args.string({ required: true, description: 'node id of a live member' }),
  };
  static override examples = ['<%= config.bin %> ring pin cache 12 node-b'];

  async run(): Promise<{ app: string; partition: number; node: string }> {
    await withAppRing(this, await this.nats(), this.flags.platform, this.args.app, async (ring) => {
      try {
        await ring.pin(this.args.partition, this.args.node);
      } catch (err) {
        this.error((err as Error).message, {
          exit: isGcError(err, RingErrorCode.UnknownNode) ? ExitCode.NotFound : ExitCode.Failed,
        });
      }
    });
    this.log(`partition ${this.args.partition} of ${this.args.app} pinned to ${this.args.node}`);
    return { app: this.args.app, partition: this.args.partition, node: this.args.node };
  }
}
