import { nodeArg, reasonFlag } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import { dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class NodeCordon extends PlacementCommand<typeof NodeCordon> {
  static override summary = 'Cordon a node: it takes no new apps; the apps it runs stay.';
  static override description =
    'Only apps declared with placement are affected. Undo with `gc node uncordon`; move the apps off with `gc node drain`. --dry-run prints what the cordon would change (the plan), changing nothing. Exit codes: 0 done (or planned), 1 refused, 3 NATS unreachable, 4 unknown node.';
  static override args = { node: nodeArg };
  static override flags = { reason: reasonFlag('cordoned by an operator'), 'dry-run': dryRunFlag };
  static override examples = [
    '<%= config.bin %> node cordon node-b --reason "disk replacement"',
    '<%= config.bin %> node cordon node-b --dry-run',
  ];

  async run(): Promise<{ node: string; cordoned: true } | PrintedPlan> {
    const { node } = this.args;
    if (this.flags['dry-run']) return this.plan({ op: 'cordon', node });
    // Connecting first: NATS unreachable exits 3, not as a refused cordon.
    const control = await this.placement();
    await this.orExit(() => control.cordon(node, this.flags.reason));
    this.log(`${node} is cordoned: it takes no new apps`);
    return { node, cordoned: true };
  }
}
