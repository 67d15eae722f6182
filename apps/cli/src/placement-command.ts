// The base of the placement commands (`gc node drain|cordon|uncordon|label`, `gc app move|rebalance|placement`):
// the control API over the shared connection, `--dry-run`'s plan, and their exit codes.
import type { Command } from '@oclif/core';
import type { PlacementControl, PlacementOperation } from '@gc/platform';
import { validateAppName } from '@gc/core';
import { BaseCommand, ExitCode } from './base.js';
import { cliPlacement, placementExit } from './placement-control.js';
import { declaredApp, dryRun, type DeclaredPlacement, type PrintedPlan } from './placement-plan.js';

export abstract class PlacementCommand<T extends typeof Command> extends BaseCommand<T> {
  // Repeated from BaseCommand: oclif's manifest records a class's own statics and its parent's only.
  static override enableJsonFlag = true;

  /** Placement operations on --platform (connecting first). */
  protected async placement(): Promise<PlacementControl> {
    return cliPlacement(await this.nats(), this.flags.platform, this.flags.timeout);
  }

  /** `--dry-run`: prints the plan of `operation` and returns it (the `--json` result), changing nothing. */
  protected async plan(operation: PlacementOperation): Promise<PrintedPlan> {
    return dryRun(this, await this.nats(), this.flags, operation);
  }

  /**
   * Runs `work`; an error ends the command with its message and the exit code `exit` gives it (by default
   * `placementExit`'s: 4 for an unknown node or platform, 1 for a refused operation).
   */
  protected async orExit<R>(
    work: () => Promise<R>,
    exit: (err: unknown) => number = placementExit,
  ): Promise<R> {
    try {
      return await work();
    } catch (err) {
      this.error((err as Error).message, { exit: exit(err) });
    }
  }

  /** `app`'s placement as its live nodes declare it (undefined: none does); throws for a bad app name. */
  protected async declaredPlacement(app: string): Promise<DeclaredPlacement | undefined> {
    validateAppName(app);
    return declaredApp(await this.nats(), this.flags.platform, app);
  }

  /** Exit 4: no live node of --platform declares `app` with placement. */
  protected undeclared(app: string): never {
    this.error(`no live node of platform ${this.flags.platform} declares app ${app} with placement`, {
      exit: ExitCode.NotFound,
    });
  }
}
