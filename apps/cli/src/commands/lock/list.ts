import { Flags } from '@oclif/core';
import type { LockInfo } from '@gc/locks';
import { BaseCommand } from '../../base.js';
import { openLocks } from '../../lock-open.js';
import { table } from '../../table.js';

export default class LockList extends BaseCommand<typeof LockList> {
  static override summary =
    "List held locks and semaphore permits of an app (or the platform's) with owner, epoch and expiry.";
  static override flags = {
    app: Flags.string({ char: 'a', description: 'app name (default: platform-wide locks)' }),
  };
  static override examples = [
    '<%= config.bin %> lock list --app orders',
    '<%= config.bin %> lock list --json',
  ];

  async run(): Promise<LockInfo[]> {
    const locks = await openLocks(await this.nats(), this.flags.platform, this.flags.app, 'gc-cli');
    const held = locks ? (await locks.holders()).filter((l) => l.state === 'held') : [];
    await locks?.close();
    this.log(
      held.length
        ? table(
            ['LOCK', 'SLOT', 'OWNER', 'EPOCH', 'EXPIRES IN'],
            held.map((l) => [
              l.name,
              l.slot === undefined ? '-' : String(l.slot),
              l.owner,
              String(l.epoch),
              l.expiresInMs === undefined ? '-' : `${Math.round(l.expiresInMs)} ms`,
            ]),
          )
        : `no held locks ${this.flags.app ? `for app ${this.flags.app}` : 'platform-wide'}`,
    );
    return held;
  }
}
