import { Flags } from '@oclif/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { appArg, reasonFlag, waitFlag } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import { dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

export default class AppMove extends PlacementCommand<typeof AppMove> {
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
  static override args = { app: appArg };
  static override flags = {
    to: Flags.string({ description: 'target node id', required: true }),
    force: Flags.boolean({
      description: 'record the move even if the standby is not ready yet (it hands over once it is)',
      default: false,
    }),
    reason: reasonFlag('moved by an operator'),
    wait: waitFlag('wait until the app is active on the target'),
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
    if (this.flags['dry-run']) return this.plan({ op: 'move', app, to });
    const control = await this.placement();
    const t0 = Date.now();
    await this.orExit(() => control.move(app, to, { force: this.flags.force, reason: this.flags.reason }));
    if (!this.flags.wait) {
      this.log(`moving ${app} to ${to}`);
      return { app, to, active: [], tookMs: 0, done: false };
    }
    const limit = this.waitLimitMs();
    let active: string[] = [];
    while (Date.now() - t0 < limit) {
      active = (await control.where(app)).active;
      if (active.length === 1 && active[0] === to) {
        const tookMs = Date.now() - t0;
        this.log(`${app} is active on ${to} (${tookMs} ms)`);
        return { app, to, active, tookMs, done: true };
      }
      await sleep(200);
    }
    return this.failed(
      `${app} is not active on ${to} after ${limit} ms (active on: ${active.join(', ') || 'none'})`,
      { app, to, active, tookMs: Date.now() - t0, done: false },
    );
  }
}
