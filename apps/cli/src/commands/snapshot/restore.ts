import { SnapshotNotFoundError } from '@gc/snapshot';
import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import type { SnapshotInfo } from '@gc/snapshot';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';
import { openSnapshots } from '../../snapshot-open.js';

export default class SnapshotRestore extends BaseCommand<typeof SnapshotRestore> {
  static override summary =
    'Restore a snapshot to a file: downloaded, verified (digest, page checksum, integrity_check), then moved into place.';
  static override args = { app: appArg };
  static override flags = {
    to: Flags.string({ description: 'target database path', required: true }),
    name: Flags.string({ description: 'snapshot name (default: the newest)' }),
  };
  static override examples = [
    '<%= config.bin %> snapshot restore orders --to /tmp/orders.db',
    '<%= config.bin %> snapshot restore orders --name snap-0000000000000042 --to ./copy.db',
  ];

  async run(): Promise<SnapshotInfo & { path: string }> {
    const store = await openSnapshots(await this.nats(), this.flags.platform, this.args.app);
    if (!store) this.error(`app ${this.args.app} has no snapshots`, { exit: ExitCode.NotFound });
    const path = resolve(this.flags.to);
    let last = -1;
    try {
      const info = await store.restore(path, {
        ...(this.flags.name ? { name: this.flags.name } : {}),
        onProgress: (p) => {
          const pct = p.totalBytes ? Math.floor((100 * p.doneBytes) / p.totalBytes) : 100;
          if (pct >= last + 10 || pct === 100) {
            last = pct;
            this.logToStderr(`${p.phase}: ${pct}%`);
          }
        },
      });
      this.log(`restored ${info.name} (txid ${info.txid}) to ${path}; integrity_check ok`);
      return { ...info, path };
    } catch (err) {
      this.error(`restore failed, nothing was written to ${path}: ${(err as Error).message}`, {
        exit: err instanceof SnapshotNotFoundError ? ExitCode.NotFound : ExitCode.Failed,
      });
    }
  }
}
