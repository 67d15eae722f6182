import { isGcError } from '@gc/core';
import { PlacementOpErrorCode } from '@gc/platform';
import { BaseCommand, ExitCode } from '../base.js';
import { appArg } from '../flags.js';
import { cliPlacement } from '../placement-control.js';
import { table } from '../table.js';

type Where = Awaited<ReturnType<ReturnType<typeof cliPlacement>['where']>> & {
  /** Why its automatic migration waits (cooldown, a maintenance window, migrations in flight). */
  deferred?: string;
  /** Why it has not left a node: its `onMigrationStart` refused there ("node: reason"). */
  refused?: string;
};

export default class Explain extends BaseCommand<typeof Explain> {
  static override summary = "Show where an app with placement runs and why: each node's verdict and score.";
  static override description =
    'Also why a migration of the app is deferred (a cooldown, a maintenance window, migrations in flight) or refused (its onMigrationStart hook on a node), while it is (`deferred`, `refused` with --json). Exit codes: 0 shown, 1 failed, 3 NATS unreachable, 4 no decision yet or an app without placement.';
  static override args = { app: appArg };
  static override examples = ['<%= config.bin %> explain orders', '<%= config.bin %> explain orders --json'];

  async run(): Promise<Where> {
    let w: Where;
    try {
      const control = cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout);
      const [where, state] = await Promise.all([control.where(this.args.app), control.state()]);
      const deferred = state?.deferred?.[this.args.app];
      const refused = state?.refused?.[this.args.app];
      w = {
        ...where,
        ...(deferred !== undefined ? { deferred } : {}),
        ...(refused !== undefined ? { refused } : {}),
      };
    } catch (err) {
      this.error((err as Error).message, {
        exit: isGcError(err, PlacementOpErrorCode.NotFound) ? ExitCode.NotFound : ExitCode.Failed,
      });
    }
    if (!w.generation) {
      this.logToStderr(
        `no placement decision yet on platform ${this.flags.platform} (no app with placement runs?)`,
      );
      if (!this.jsonEnabled()) this.exit(ExitCode.NotFound);
      return w;
    }
    if (!w.placed.length && !w.unsatisfiable && !Object.keys(w.reasons).length) {
      this.logToStderr(`app ${w.app} has no placement (not declared with placement on any live node)`);
      if (!this.jsonEnabled()) this.exit(ExitCode.NotFound);
      return w;
    }
    this.log(
      `${w.app}: placed on ${w.placed.join(', ') || 'no node'}${w.leader ? `, preferred leader ${w.leader}` : ''}; active on ${w.active.join(', ') || 'no node'} (decision ${w.generation})`,
    );
    if (w.unsatisfiable) this.log(`cannot be placed: ${w.unsatisfiable}`);
    if (w.deferred) this.log(`migration deferred: ${w.deferred}`);
    if (w.refused) this.log(`migration refused: ${w.refused}`);
    this.log(
      table(
        ['NODE', 'VERDICT', 'WHY'],
        Object.entries(w.reasons)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([node, r]) => [node, String(r.status), why(r)]),
      ),
    );
    return w;
  }
}

function why(r: Record<string, unknown>): string {
  const score = r.score as { total?: number; affinity?: number; load?: number; sticky?: number } | undefined;
  const parts: string[] = [];
  if (typeof r.role === 'string') parts.push(r.role);
  if (typeof r.constraint === 'string') parts.push(`${r.constraint}:`);
  if (typeof r.detail === 'string') parts.push(r.detail);
  if (score?.total !== undefined)
    parts.push(
      `score ${score.total} (affinity ${score.affinity ?? 0}, load ${score.load ?? 0}, sticky ${score.sticky ?? 0})`,
    );
  return parts.join(' ');
}
