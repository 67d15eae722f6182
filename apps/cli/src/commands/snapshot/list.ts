import type { SnapshotInfo } from '@gc/snapshot';
import { BaseCommand } from '../../base.js';
import { appArg } from '../../flags.js';
import { openSnapshots } from '../../snapshot-open.js';
import { table } from '../../table.js';

export default class SnapshotList extends BaseCommand<typeof SnapshotList> {
  static override summary = "List an app's snapshots (oldest first) with txid, epoch, size and time.";
  static override args = { app: appArg };
  static override examples = ['<%= config.bin %> snapshot list orders --json'];

  async run(): Promise<SnapshotInfo[]> {
    const store = await openSnapshots(await this.nats(), this.flags.platform, this.args.app);
    const list = store ? await store.list() : [];
    this.log(
      list.length
        ? table(
            ['NAME', 'TXID', 'EPOCH', 'BYTES', 'CREATED'],
            list.map((s) => [
              s.name,
              String(s.txid),
              String(s.epoch),
              String(s.sizeBytes),
              new Date(s.createdAtMs).toISOString(),
            ]),
          )
        : `no snapshots of app ${this.args.app}`,
    );
    return list;
  }
}
