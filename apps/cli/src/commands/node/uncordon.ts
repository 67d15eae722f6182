import { ExitCode } from '../../base.js';
import { nodeArg } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import { dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class NodeUncordon extends PlacementCommand<typeof NodeUncordon> {
  static override summary = 'Lift a cordon or a drain: the scheduler may place apps on the node again.';
  static override description =
    'Also lifts the hold of a node that is gone. --dry-run prints what lifting it would place on the node (the plan), changing nothing. Exit codes: 0 done (or planned), 1 failed, 3 NATS unreachable, 4 (--dry-run only) a node that is not live.';
  static override args = { node: nodeArg };
  static override flags = { 'dry-run': dryRunFlag };
  static override examples = [
    '<%= config.bin %> node uncordon node-b',
    '<%= config.bin %> node uncordon node-b --dry-run',
  ];

  async run(): Promise<{ node: string; cordoned: false } | PrintedPlan> {
    const { node } = this.args;
    if (this.flags['dry-run']) return this.plan({ op: 'uncordon', node });
    const control = await this.placement(); // NATS unreachable exits 3
    await this.orExit(
      () => control.uncordon(node),
      () => ExitCode.Failed,
    );
    this.log(`${node} is no longer cordoned`);
    return { node, cordoned: false };
  }
}
