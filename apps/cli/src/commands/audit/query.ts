import { Flags } from '@oclif/core';
import { createAudit, type AuditRecord } from '@gc/audit';
import { BaseCommand } from '../../base.js';
import { table } from '../../table.js';

/** Parses `90s`, `15m`, `2h`, `1d` or an ISO date into a Date. */
export function parseSince(v: string): Date {
  const m = /^(\d+)(s|m|h|d)$/.exec(v);
  if (m)
    return new Date(
      Date.now() - Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'],
    );
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new Error(`--since ${JSON.stringify(v)}: use a duration (90s, 15m, 2h, 1d) or an ISO date`);
  return d;
}

export default class AuditQuery extends BaseCommand<typeof AuditQuery> {
  static override summary = 'Query the audit trail ({platform}_audit): who changed what, when.';
  static override flags = {
    type: Flags.string({ char: 't', description: 'event type or pattern (app.*, lock.forced, node.>)' }),
    app: Flags.string({ char: 'a', description: 'app name' }),
    node: Flags.string({ char: 'n', description: 'node id' }),
    since: Flags.string({ description: 'how far back: 90s, 15m, 2h, 1d or an ISO date', default: '1h' }),
    limit: Flags.integer({
      description: 'at most this many records (newest)',
      default: 100,
      min: 1,
      max: 10_000,
    }),
  };
  static override examples = [
    '<%= config.bin %> audit query --type "app.*" --app orders --since 2h',
    '<%= config.bin %> audit query --json',
  ];

  async run(): Promise<AuditRecord[]> {
    let since: Date;
    try {
      since = parseSince(this.flags.since);
    } catch (err) {
      this.error((err as Error).message, { exit: 1 });
    }
    const audit = await createAudit(await this.nats(), { platform: this.flags.platform, nodeId: 'gc-cli' });
    try {
      const records = await audit.query({
        since,
        limit: this.flags.limit,
        ...(this.flags.type ? { type: this.flags.type } : {}),
        ...(this.flags.app ? { app: this.flags.app } : {}),
        ...(this.flags.node ? { node: this.flags.node } : {}),
      });
      this.log(
        table(
          ['TIME', 'NODE', 'TYPE', 'APP', 'EPOCH', 'DATA'],
          records.map((r) => [
            r.time,
            r.node,
            r.type,
            r.app ?? '-',
            r.epoch === undefined ? '-' : String(r.epoch),
            JSON.stringify(r.data),
          ]),
        ),
      );
      return records;
    } finally {
      await audit.close();
    }
  }
}
