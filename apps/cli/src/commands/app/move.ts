import { Args, Flags } from '@oclif/core';
import { BaseCommand, ExitCode } from '../../base.js';
import { cliPlacement, placementExit } from '../../placement-control.js';
import { dryRun, dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class AppMove extends BaseCommand<typeof AppMove> {
  static override summary = "Move an active-passive app's lead to another node, with its data.";
  static override description = [
    'A switchover to --to: the leader runs onPassive and hands over; the target promotes its replica at the',
    "stream's tip before it serves. Refused (exit 1) when the app has no placement, the target may not run it",
    '(the constraint is named), is cordoned, or its standby is not ready (unless --force: the move is then',
    'recorded and the hand-over happens once the standby is ready, or is given up after 2 minutes). Unknown',
    'node: exit 4. Waits for the app to be active on the target unless --no-wait (exit 1 if it is not).',
    '--dry-run prints the plan instead (the switchover, whether the standby on the target is caught up and its',
    'replica lag), changing nothing: exit 0, or the refusals above except a standby that is not ready.',
  ].join(' ');
  static override args = { app: Args.string({ description: 'app name', required: true }) };
  static override flags = {
    to: Flags.string({ description: 'target node id', required: true }),
    force: Flags.boolean({
      description: 'record the move even if the standby is not ready yet (it hands over once it is)',
      default: false,
    }),
    reason: Flags.string({
      description: 'why (recorded in the audit trail)',
      default: 'moved by an operator',
    }),
    wait: Flags.boolean({
      description: 'wait until the app is active on the target',
      default: true,
      allowNo: true,
    }),
    'dry-run': dryRunFlag,
  };
  static override examples = [
    '<%= config.bin %> app move orders --to node-c',
    '<%= config.bin %> app move orders --to node-c --force',
    '<%= config.bin %> app move orders --to node-c --dry-run',
  ];

  async run(): Promise<
    { app: string; to: string; active: string[]; tookMs: number; done: boolean } | PrintedPlan
  > {
    const { app } = this.args;
    const to = this.flags.to;
    if (this.flags['dry-run']) return dryRun(this, await this.nats(), this.flags, { op: 'move', app, to });
    const control = cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout);
    const t0 = Date.now();
    try {
      await control.move(app, to, { force: this.flags.force, reason: this.flags.reason });
    } catch (err) {
      this.error((err as Error).message, { exit: placementExit(err) });
    }
    if (!this.flags.wait) {
      this.log(`moving ${app} to ${to}`);
      return { app, to, active: [], tookMs: 0, done: false };
    }
    const limit = Math.max(this.flags.timeout * 30, 30_000);
    let active: string[] = [];
    while (Date.now() - t0 < limit) {
      active = (await control.where(app)).active;
      if (active.length === 1 && active[0] === to) {
        const tookMs = Date.now() - t0;
        this.log(`${app} is active on ${to} (${tookMs} ms)`);
        return { app, to, active, tookMs, done: true };
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    this.logToStderr(
      `${app} is not active on ${to} after ${limit} ms (active on: ${active.join(', ') || 'none'})`,
    );
    // Scripts trust the exit code, --json or not.
    if (!this.jsonEnabled()) this.exit(ExitCode.Failed);
    process.exitCode = ExitCode.Failed;
    return { app, to, active, tookMs: Date.now() - t0, done: false };
  }
}
