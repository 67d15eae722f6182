import { Flags } from '@oclif/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode } from '../../base.js';
import { nodeArg, reasonFlag, waitFlag } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import { parseDurationMs } from '../../placement-control.js';
import { dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class NodeDrain extends PlacementCommand<typeof NodeDrain> {
  static override summary = 'Drain a node: move every app with placement off it, within a deadline.';
  static override description = [
    'The node is cordoned and its apps move to other nodes that may run them: pool instances start elsewhere',
    'before they stop here, an active-passive leader hands over to a ready standby. Disruption budgets are',
    'kept until the deadline (default 1h, as Nomad); what a budget or a constraint holds back is printed every',
    'few seconds; after the deadline the moves are forced. The node stays cordoned (`gc node uncordon`).',
    '--dry-run prints what the drain would move where, the instances that stop, the switchovers and whether',
    "their target's standby is caught up (its replica lag), and what a budget would hold back; it changes",
    'nothing. Exit codes: 0 drained (or planned, also a plan with blocked apps), 1 refused or not drained',
    'within the deadline plus --grace, 3 NATS unreachable, 4 unknown node.',
  ].join(' ');
  static override args = { node: nodeArg };
  static override flags = {
    deadline: Flags.string({
      description: 'how long budgets may hold the drain back (90s, 15m, 1h)',
      default: '1h',
    }),
    reason: reasonFlag('drained by an operator'),
    wait: waitFlag('wait until the node is empty, printing progress'),
    grace: Flags.string({
      description: 'how long to wait past the deadline for the forced moves',
      default: '2m',
    }),
    'dry-run': dryRunFlag,
  };
  static override examples = [
    '<%= config.bin %> node drain node-b --deadline 30m --reason "kernel upgrade"',
    '<%= config.bin %> node drain node-b --no-wait --json',
    '<%= config.bin %> node drain node-b --dry-run',
  ];

  async run(): Promise<
    | {
        node: string;
        drained: boolean;
        remaining: string[];
        blocked: string[];
        forced: boolean;
      }
    | PrintedPlan
  > {
    let deadlineMs: number;
    let graceMs: number;
    try {
      deadlineMs = parseDurationMs('deadline', this.flags.deadline);
      graceMs = parseDurationMs('grace', this.flags.grace);
    } catch (err) {
      this.error((err as Error).message, { exit: ExitCode.Failed });
    }
    const node = this.args.node;
    if (this.flags['dry-run']) return this.plan({ op: 'drain', node, deadlineMs });
    const control = await this.placement();
    await this.orExit(() => control.drain(node, { deadlineMs, reason: this.flags.reason }));
    this.log(`draining ${node} (deadline ${this.flags.deadline})`);
    const start = Date.now();
    let last = { remaining: [] as string[], blocked: [] as string[], forced: false };
    if (!this.flags.wait) return { node, drained: false, ...last };
    let said = '';
    let saidAt = 0;
    while (Date.now() - start < deadlineMs + graceMs) {
      const state = await control.state();
      const d = state?.draining[node];
      // Apps still active on the node, as the nodes themselves say (the decision alone is not the move).
      const activeHere = state
        ? (
            await Promise.all(
              Object.keys(state.placements).map(async (app) => [app, await control.where(app)] as const),
            )
          )
            .filter(([, w]) => w.active.includes(node))
            .map(([app]) => app)
        : [];
      if (d)
        last = {
          remaining: [...new Set([...d.remaining, ...activeHere])].sort(),
          blocked: d.blocked,
          forced: d.forced,
        };
      if (d && !last.remaining.length) {
        this.log(`${node} is drained${d.forced ? ' (forced after the deadline)' : ''}; it stays cordoned`);
        return { node, drained: true, ...last };
      }
      const line = d
        ? `still on ${node}: ${last.remaining.join(', ') || '(moving)'}${d.blocked.length ? `\n  blocked: ${d.blocked.join('\n  blocked: ')}` : ''}`
        : 'waiting for the scheduler to take the drain into account';
      if (line !== said || Date.now() - saidAt > 5000) {
        this.logToStderr(line);
        said = line;
        saidAt = Date.now();
      }
      await sleep(500);
    }
    return this.failed(`${node} was not drained within the deadline plus --grace ${this.flags.grace}`, {
      node,
      drained: false,
      ...last,
    });
  }
}
