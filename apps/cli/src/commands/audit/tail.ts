import { Flags } from '@oclif/core';
import { createAudit } from '@gc/audit';
import { BaseCommand } from '../../base.js';
import { parseSince } from './query.js';

export default class AuditTail extends BaseCommand<typeof AuditTail> {
  static override summary =
    'Follow the audit trail live (Ctrl-C to stop); --json prints one JSON object a line.';
  static override enableJsonFlag = false;
  static override flags = {
    json: Flags.boolean({ description: 'one JSON object a line', default: false }),
    type: Flags.string({ char: 't', description: 'event type or pattern (app.*, lock.forced)' }),
    app: Flags.string({ char: 'a', description: 'app name' }),
    node: Flags.string({ char: 'n', description: 'node id' }),
    since: Flags.string({ description: 'start this far back (90s, 15m, 2h) instead of now' }),
    count: Flags.integer({ description: 'stop after this many records', min: 1 }),
  };
  static override examples = [
    '<%= config.bin %> audit tail --app orders',
    '<%= config.bin %> audit tail --since 5m --json',
  ];

  async run(): Promise<void> {
    let since: Date | undefined;
    try {
      since = this.flags.since ? parseSince(this.flags.since) : undefined;
    } catch (err) {
      this.error((err as Error).message, { exit: 1 });
    }
    const audit = await createAudit(await this.nats(), { platform: this.flags.platform, nodeId: 'gc-cli' });
    const tail = await audit.tail({
      ...(since ? { since } : {}),
      ...(this.flags.type ? { type: this.flags.type } : {}),
      ...(this.flags.app ? { app: this.flags.app } : {}),
      ...(this.flags.node ? { node: this.flags.node } : {}),
    });
    const stop = () => tail.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let n = 0;
    try {
      for await (const r of tail) {
        this.log(
          this.flags.json
            ? JSON.stringify(r)
            : `${r.time} ${r.node} ${r.type}${r.app ? ` ${r.app}` : ''}${r.epoch ? ` epoch=${r.epoch}` : ''} ${JSON.stringify(r.data)}`,
        );
        if (this.flags.count && ++n >= this.flags.count) break;
      }
    } finally {
      tail.stop();
      await audit.close();
    }
  }
}
