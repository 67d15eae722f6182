import { Args } from '@oclif/core';
import { BaseCommand, ExitCode } from '../../base.js';
import { cliPlacement } from '../../placement-control.js';
import { dryRun, dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class NodeUncordon extends BaseCommand<typeof NodeUncordon> {
  static override summary = 'Lift a cordon or a drain: the scheduler may place apps on the node again.';
  static override description =
    'Also lifts the hold of a node that is gone. --dry-run prints what lifting it would place on the node (the plan), changing nothing. Exit codes: 0 done (or planned), 1 failed, 3 NATS unreachable, 4 (--dry-run only) a node that is not live.';
  static override args = { node: Args.string({ description: 'node id', required: true }) };
  static override flags = { 'dry-run': dryRunFlag };
  static override examples = [
    '<%= config.bin %> node uncordon node-b',
    '<%= config.bin %> node uncordon node-b --dry-run',
  ];

  async run(): Promise<{ node: string; cordoned: false } | PrintedPlan> {
    if (this.flags['dry-run'])
      return dryRun(this, await this.nats(), this.flags, { op: 'uncordon', node: this.args.node });
    try {
      await cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout).uncordon(this.args.node);
    } catch (err) {
      this.error((err as Error).message, { exit: ExitCode.Failed });
    }
    this.log(`${this.args.node} is no longer cordoned`);
    return { node: this.args.node, cordoned: false };
  }
}
