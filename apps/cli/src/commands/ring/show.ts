import { Flags } from '@oclif/core';
import type { RingSnapshot } from '@gc/ring';
import { BaseCommand } from '../../base.js';
import { ringAppArg } from '../../flags.js';
import { withAppRing } from '../../ring-open.js';
import { table } from '../../table.js';

export default class RingShow extends BaseCommand<typeof RingShow> {
  static override summary =
    "Show a ring-mode app's partitions: members, partitions per member, moves, pins, the coordinator.";
  static override description =
    'Reads the ring bucket ({platform}_{app}_ring). --partitions lists every partition with its owner, state, epoch and target; --key shows which partition and owner a key has.';
  static override args = { app: ringAppArg };
  static override flags = {
    partitions: Flags.boolean({ description: 'list every partition' }),
    key: Flags.string({ description: "show this key's partition and owner" }),
  };
  static override examples = [
    '<%= config.bin %> ring show cache',
    '<%= config.bin %> ring show cache --key user:42',
    '<%= config.bin %> ring show cache --partitions --json',
  ];

  async run(): Promise<RingSnapshot & { key?: { key: string; partition: number; owner: string | null } }> {
    return withAppRing(this, await this.nats(), this.flags.platform, this.args.app, (ring) => {
      const s = ring.snapshot();
      const key = this.flags.key
        ? {
            key: this.flags.key,
            partition: ring.partitionOf(this.flags.key),
            owner: ring.ownerOf(this.flags.key) ?? null,
          }
        : undefined;
      this.log(
        `ring ${s.platform}/${s.app}: ${s.partitions} partitions, ${s.members.length} member(s), coordinator ${s.coordinator ?? '(none)'}, map v${s.mapVersion}, ${s.moving.length} moving, ${Object.keys(s.pins).length} pinned`,
      );
      this.log(
        table(
          ['MEMBER', 'WEIGHT', 'STATE', 'PARTITIONS'],
          s.members.map((m) => [m.nodeId, String(m.weight), m.state, String(m.partitions)]),
        ),
      );
      if (key) this.log(`key ${key.key}: partition ${key.partition}, owner ${key.owner ?? '(moving)'}`);
      if (this.flags.partitions)
        this.log(
          table(
            ['PARTITION', 'OWNER', 'STATE', 'EPOCH', 'TARGET', 'PIN'],
            s.owners.map((o, p) => [
              String(p),
              o ?? '-',
              s.states[p] ?? '-',
              String(s.epochs[p] ?? 0),
              s.targets[p] ?? '-',
              s.pins[p] ?? '',
            ]),
          ),
        );
      return { ...s, ...(key ? { key } : {}) };
    });
  }
}
