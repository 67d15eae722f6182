import { appArg } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import { windowNow, type DeclaredPlacement, type WindowNow } from '../../placement-plan.js';

/** `gc app placement --json`. */
interface AppPlacementView {
  app: string;
  /** As the nodes declare it (the scheduler uses the first node's spec, by id). */
  declared: DeclaredPlacement;
  /** Its maintenance windows now (absent: it has none, automatic migrations may happen any time). */
  window?: WindowNow;
  /** The last decision: where it is placed, its preferred leader, where it is active now. */
  placed: string[];
  leader?: string;
  active: string[];
  /** Why it cannot be placed, when it cannot. */
  unsatisfiable?: string;
  /** Why its automatic migration waits, while it does. */
  deferred?: string;
  /** Why it has not left a node (`onMigrationStart` refused there: "node: reason"). */
  refused?: string;
  /** When it last migrated (ISO). */
  migratedAt?: string;
  /** Generation of the last decision (0: none yet). */
  generation: number;
}

export default class AppPlacement extends PlacementCommand<typeof AppPlacement> {
  static override summary =
    "Show an app's placement: as declared (constraints, budget, migration policy), where it is placed and active.";
  static override description = [
    'The spec is read from the declarations of the nodes that run the app with placement (the scheduler',
    "uses the first node's, by id; nodes that declare another one are named). With maintenance windows, it",
    'says whether one is open now and when it closes, or when the next opens. Then the last decision: where',
    'the app is placed and active, and why a migration is deferred or refused, or why it cannot be placed;',
    '`gc explain` tells why each node was picked or not. Exit codes: 0 shown, 1 failed, 3 NATS unreachable,',
    '4 no live node declares the app with placement (or no placement on the platform).',
  ].join(' ');
  static override args = { app: appArg };
  static override examples = [
    '<%= config.bin %> app placement orders',
    '<%= config.bin %> app placement orders --json',
  ];

  async run(): Promise<AppPlacementView> {
    const { app } = this.args;
    await this.nats(); // first: unreachable NATS is exit 3, not a failed read
    const { declared, w, state } = await this.orExit(async () => {
      const declared = await this.declaredPlacement(app);
      const control = await this.placement();
      const [w, state] = await Promise.all([control.where(app), control.state()]);
      return { declared, w, state };
    });
    if (!declared) this.undeclared(app);
    const window = windowNow(declared.migrate, Date.now());
    const migrated = state?.migrated?.[app];
    const out: AppPlacementView = {
      app,
      declared,
      ...(window ? { window } : {}),
      placed: w.placed,
      ...(w.leader !== undefined ? { leader: w.leader } : {}),
      active: w.active,
      ...(w.unsatisfiable !== undefined ? { unsatisfiable: w.unsatisfiable } : {}),
      ...(state?.deferred?.[app] !== undefined ? { deferred: state.deferred[app] } : {}),
      ...(state?.refused?.[app] !== undefined ? { refused: state.refused[app] } : {}),
      ...(migrated !== undefined ? { migratedAt: new Date(migrated).toISOString() } : {}),
      generation: w.generation,
    };
    const spec = JSON.stringify(declared.placement);
    this.log(`${app} (${declared.mode}), declared by ${declared.declaredBy.join(', ')}`);
    if (declared.conflicting)
      this.log(
        `  ! ${declared.conflicting.join(', ')} declare another spec: the scheduler uses ${declared.declaredBy[0]}'s`,
      );
    this.log(`  constraints: ${spec === '{}' ? 'none (any node that declares it)' : spec}`);
    this.log(`  budget:      ${declared.budget ? JSON.stringify(declared.budget) : 'none'}`);
    const m = declared.migrate;
    this.log(
      `  migrate:     cooldown ${m?.cooldownMs !== undefined ? `${m.cooldownMs} ms` : "the platform's default"}; ${
        m?.windows?.length
          ? `windows ${m.windows.map((x) => `"${x.cron}" for ${x.durationMs} ms${x.timezone ? ` (${x.timezone})` : ''}`).join(', ')}`
          : 'no maintenance window (any time)'
      }`,
    );
    if (window)
      this.log(
        `  window:      ${
          'error' in window
            ? `cannot be evaluated: ${window.error}`
            : window.open
              ? `open now, closes at ${window.closesAt}`
              : `closed${window.opensAt ? `, the next opens at ${window.opensAt}` : ', none opens again'}`
        }`,
      );
    if (!w.generation) this.log('no placement decision yet');
    else {
      this.log(
        `placed on ${w.placed.join(', ') || 'no node'}${w.leader !== undefined ? `, leader ${w.leader}` : ''}; active on ${w.active.join(', ') || 'no node'} (decision ${w.generation})`,
      );
      if (out.unsatisfiable) this.log(`  cannot be placed: ${out.unsatisfiable}`);
      if (out.deferred) this.log(`  deferred: ${out.deferred}`);
      if (out.refused) this.log(`  refused: ${out.refused}`);
      if (out.migratedAt) this.log(`  last migrated at ${out.migratedAt}`);
    }
    return out;
  }
}
