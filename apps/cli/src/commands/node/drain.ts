import { Args, Flags } from '@oclif/core';
import { BaseCommand, ExitCode } from '../../base.js';
import { cliPlacement, parseDurationMs, placementExit } from '../../placement-control.js';
import { dryRun, dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class NodeDrain extends BaseCommand<typeof NodeDrain> {
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
  static override args = { node: Args.string({ description: 'node id', required: true }) };
  static override flags = {
    deadline: Flags.string({
      description: 'how long budgets may hold the drain back (90s, 15m, 1h)',
      default: '1h',
    }),
    reason: Flags.string({
      description: 'why (recorded in the audit trail)',
      default: 'drained by an operator',
    }),
    wait: Flags.boolean({
      description: 'wait until the node is empty, printing progress',
      default: true,
      allowNo: true,
    }),
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
    if (this.flags['dry-run'])
      return dryRun(this, await this.nats(), this.flags, { op: 'drain', node: this.args.node, deadlineMs });
    const control = cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout);
    const node = this.args.node;
    try {
      await control.drain(node, { deadlineMs, reason: this.flags.reason });
    } catch (err) {
      this.error((err as Error).message, { exit: placementExit(err) });
    }
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
      await new Promise((r) => setTimeout(r, 500));
    }
    this.logToStderr(`${node} was not drained within the deadline plus --grace ${this.flags.grace}`);
    // Scripts trust the exit code, --json or not (`gc node drain n --json && reboot`).
    if (!this.jsonEnabled()) this.exit(ExitCode.Failed);
    process.exitCode = ExitCode.Failed;
    return { node, drained: false, ...last };
  }
}
