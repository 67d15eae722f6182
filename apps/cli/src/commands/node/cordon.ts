import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base.js';
import { cliPlacement, placementExit } from '../../placement-control.js';

export default class NodeCordon extends BaseCommand<typeof NodeCordon> {
  static override summary = 'Cordon a node: it takes no new apps; the apps it runs stay.';
  static override description =
    'Only apps declared with placement are affected. Undo with `gc node uncordon`; move the apps off with `gc node drain`.';
  static override args = { node: Args.string({ description: 'node id', required: true }) };
  static override flags = {
    reason: Flags.string({
      description: 'why (recorded in the audit trail)',
      default: 'cordoned by an operator',
    }),
  };
  static override examples = ['<%= config.bin %> node cordon node-b --reason "disk replacement"'];

  async run(): Promise<{ node: string; cordoned: true }> {
    try {
      await cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout).cordon(
        this.args.node,
        this.flags.reason,
      );
    } catch (err) {
      this.error((err as Error).message, { exit: placementExit(err) });
    }
    this.log(`${this.args.node} is cordoned: it takes no new apps`);
    return { node: this.args.node, cordoned: true };
  }
}
