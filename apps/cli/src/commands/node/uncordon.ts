import { Args } from '@oclif/core';
import { BaseCommand, ExitCode } from '../../base.js';
import { cliPlacement } from '../../placement-control.js';

export default class NodeUncordon extends BaseCommand<typeof NodeUncordon> {
  static override summary = 'Lift a cordon or a drain: the scheduler may place apps on the node again.';
  static override args = { node: Args.string({ description: 'node id', required: true }) };
  static override examples = ['<%= config.bin %> node uncordon node-b'];

  async run(): Promise<{ node: string; cordoned: false }> {
    try {
      await cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout).uncordon(this.args.node);
    } catch (err) {
      this.error((err as Error).message, { exit: ExitCode.Failed });
    }
    this.log(`${this.args.node} is no longer cordoned`);
    return { node: this.args.node, cordoned: false };
  }
}
