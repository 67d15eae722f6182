import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base.js';
import { cliPlacement, placementExit } from '../../placement-control.js';
import { dryRun, dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class NodeCordon extends BaseCommand<typeof NodeCordon> {
  static override summary = 'Cordon a node: it takes no new apps; the apps it runs stay.';
  static override description =
    'Only apps declared with placement are affected. Undo with `gc node uncordon`; move the apps off with `gc node drain`. --dry-run prints what the cordon would change (the plan), changing nothing. Exit codes: 0 done (or planned), 1 refused, 3 NATS unreachable, 4 unknown node.';
  static override args = { node: Args.string({ description: 'node id', required: true }) };
  static override flags = {
    reason: Flags.string({
      description: 'why (recorded in the audit trail)',
      default: 'cordoned by an operator',
    }),
    'dry-run': dryRunFlag,
  };
  static override examples = [
    '<%= config.bin %> node cordon node-b --reason "disk replacement"',
    '<%= config.bin %> node cordon node-b --dry-run',
  ];

  async run(): Promise<{ node: string; cordoned: true } | PrintedPlan> {
    if (this.flags['dry-run'])
      return dryRun(this, await this.nats(), this.flags, { op: 'cordon', node: this.args.node });
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
