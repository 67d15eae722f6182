import { Args, Flags } from '@oclif/core';
import { createAudit } from '@gc/audit';
import type { LockInfo } from '@gc/locks';
import { userInfo } from 'node:os';
import { BaseCommand, ExitCode } from '../../base.js';
import { openLocks } from '../../lock-open.js';

export default class LockRelease extends BaseCommand<typeof LockRelease> {
  static override summary =
    'Force-release a lock held by another owner (records who and why in the audit trail).';
  static override description =
    'A lock belongs to its holder; an operator may take it away only with --force and a --reason. The holder loses it at its next renewal, and the next holder gets a higher fencing epoch, so writes the old holder still makes are refused by fenced resources.';
  static override args = { name: Args.string({ required: true, description: 'lock name' }) };
  static override flags = {
    app: Flags.string({ char: 'a', description: 'app name (default: platform-wide locks)' }),
    force: Flags.boolean({
      description: 'required: confirms taking the lock from its owner',
      default: false,
    }),
    reason: Flags.string({ description: 'required: why (stored with the release)' }),
    slot: Flags.integer({ description: 'semaphore permit slot', min: 0 }),
  };
  static override examples = [
    '<%= config.bin %> lock release migrate --app orders --force --reason "holder wedged"',
  ];

  async run(): Promise<{ released: LockInfo }> {
    if (!this.flags.force || !this.flags.reason) {
      this.error('releasing a lock that another node holds needs --force and --reason "<why>"', {
        exit: ExitCode.Failed,
      });
    }
    const locks = await openLocks(await this.nats(), this.flags.platform, this.flags.app, 'gc-cli');
    if (!locks)
      this.error(`no locks exist ${this.flags.app ? `for app ${this.flags.app}` : 'platform-wide'}`, {
        exit: ExitCode.NotFound,
      });
    try {
      const released = await locks.forceRelease(this.args.name, {
        reason: this.flags.reason,
        ...(this.flags.slot === undefined ? {} : { slot: this.flags.slot }),
      });
      if (!released) this.error(`lock ${this.args.name} is not held`, { exit: ExitCode.NotFound });
      const audit = await createAudit(await this.nats(), { platform: this.flags.platform, nodeId: 'gc-cli' });
      await audit.record({
        type: 'lock.forced',
        ...(this.flags.app ? { app: this.flags.app } : {}),
        epoch: released.epoch,
        severity: 'warn',
        data: {
          lock: released.name,
          owner: released.owner,
          reason: this.flags.reason,
          by: `${userInfo().username}@gc-cli`,
        },
      });
      await audit.close();
      this.log(
        `released ${released.name} (was held by ${released.owner}, epoch ${released.epoch}): ${this.flags.reason}`,
      );
      return { released };
    } finally {
      await locks.close();
    }
  }
}
