import { setTimeout as sleep } from 'node:timers/promises';
import { openPlacementBucket } from '@gc/platform';
import { appArg, reasonFlag, waitFlag } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import { dryRunFlag, type PrintedPlan } from '../../placement-plan.js';

/** Where the app was and is placed (`--json`). */
interface Rebalanced {
  app: string;
  before: { placed: string[]; leader?: string };
  after: { placed: string[]; leader?: string; active: string[] };
  /** The scheduler's decision took the rebalance into account (its record is gone). */
  applied: boolean;
  /** The app is active where that decision places it (active-passive: on its leader). */
  converged: boolean;
  /** Why the migration waits, while it does (a maintenance window, migrations in flight). */
  deferred?: string;
  /** Generation of the decision last read. */
  generation: number;
  tookMs: number;
}

export default class AppRebalance extends PlacementCommand<typeof AppRebalance> {
  static override summary =
    'Place an app afresh: the scheduler picks its nodes as if it ran nowhere (apps otherwise stay put).';
  static override description = [
    'Apps with placement stay where they run unless a constraint or a clearly better node says otherwise',
    '(hysteresis); a rebalance drops that stickiness once, at the next decision. Its cooldown does not',
    'apply; its maintenance windows and the migration slots do (the migration is deferred meanwhile, and',
    'the reason printed). With --wait (the default) it waits, at most 30 times --timeout and at least 30 s,',
    'until (1) the scheduler applied the rebalance (it deletes the rebalance record with the decision that',
    'took it into account; a decision that changes nothing applies it too) and (2) the app is active where',
    'that decision placed it (active-passive: on its leader). --dry-run prints the plan instead, changing',
    'nothing. Exit codes: 0 rebalanced (or planned), 1 refused or not applied and active in time, 3 NATS',
    'unreachable, 4 no live node declares the app with placement (or no placement on the platform).',
  ].join(' ');
  static override args = { app: appArg };
  static override flags = {
    reason: reasonFlag('rebalanced by an operator'),
    wait: waitFlag('wait until the scheduler applied it and the app is active where it is placed'),
    'dry-run': dryRunFlag,
  };
  static override examples = [
    '<%= config.bin %> app rebalance orders --reason "new nodes joined"',
    '<%= config.bin %> app rebalance orders --dry-run',
    '<%= config.bin %> app rebalance orders --no-wait --json',
  ];

  async run(): Promise<Rebalanced | PrintedPlan> {
    const { app } = this.args;
    const nc = await this.nats(); // first: unreachable NATS is exit 3, not a failed read
    const spec = await this.orExit(() => this.declaredPlacement(app));
    if (!spec) this.undeclared(app);
    if (this.flags['dry-run']) return this.plan({ op: 'rebalance', app });
    const control = await this.placement();
    const t0 = Date.now();
    const before = await this.orExit(async () => {
      const where = await control.where(app);
      await control.rebalance(app, { reason: this.flags.reason });
      return where;
    });
    const was = { placed: before.placed, ...(before.leader !== undefined ? { leader: before.leader } : {}) };
    const result = (
      w: Awaited<ReturnType<typeof control.where>>,
      applied: boolean,
      converged: boolean,
      deferred: string | undefined,
    ): Rebalanced => ({
      app,
      before: was,
      after: {
        placed: w.placed,
        ...(w.leader !== undefined ? { leader: w.leader } : {}),
        active: w.active,
      },
      applied,
      converged,
      ...(deferred !== undefined ? { deferred } : {}),
      generation: w.generation,
      tookMs: Date.now() - t0,
    });
    if (!this.flags.wait) {
      this.log(`rebalance of ${app} recorded: the scheduler places it afresh at its next decision`);
      return result(before, false, false, undefined);
    }
    const bucket = await openPlacementBucket(nc, this.flags.platform, { create: false });
    const limit = this.waitLimitMs();
    let applied = false;
    let deferred: string | undefined;
    let w = before;
    while (Date.now() - t0 < limit) {
      const [pending, state] = await Promise.all([bucket.rebalances(), control.state()]);
      const why = state?.deferred?.[app];
      if (why !== undefined && why !== deferred) this.logToStderr(`${app}: deferred: ${why}`);
      deferred = why;
      applied ||= !pending.has(app);
      w = await control.where(app);
      const want = spec.mode === 'active-passive' ? (w.leader !== undefined ? [w.leader] : []) : w.placed;
      if (applied && want.length > 0 && same(w.active, want)) {
        this.log(
          `${app} rebalanced: placed on ${w.placed.join(', ')}${w.leader !== undefined ? `, leader ${w.leader}` : ''} (decision ${w.generation}; ${
            same(w.placed, before.placed) && w.leader === before.leader
              ? 'unchanged'
              : `was ${before.placed.join(', ') || 'no node'}${before.leader !== undefined ? `, leader ${before.leader}` : ''}`
          })`,
        );
        return result(w, true, true, deferred);
      }
      await sleep(200);
    }
    return this.failed(
      applied
        ? `${app}: the rebalance was applied, but the app is not active where it is placed after ${limit} ms (placed on ${w.placed.join(', ') || 'no node'}; active on ${w.active.join(', ') || 'no node'})`
        : `${app}: the scheduler has not applied the rebalance after ${limit} ms${deferred !== undefined ? ` (deferred: ${deferred})` : ''}; it stays recorded and is applied once it may`,
      result(w, applied, false, deferred),
    );
  }
}

const same = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
