import { Args } from '@oclif/core';
import { BaseCommand, ExitCode } from '../../base.js';
import { appArg, keyArg } from '../../flags.js';
import { openAppKv } from '../../kv-open.js';

export default class KvPut extends BaseCommand<typeof KvPut> {
  static override summary = "Write a key in an app's KV bucket ({platform}_{app}).";
  static override args = {
    app: appArg,
    key: keyArg,
    value: Args.string({ required: true, description: 'value (a string)' }),
  };
  static override examples = ['<%= config.bin %> kv put orders feature-x on'];

  async run(): Promise<{ app: string; key: string; revision: number }> {
    const kv = await openAppKv(await this.nats(), this.flags.platform, this.args.app);
    if (!kv)
      this.error(
        `app ${this.args.app} of platform ${this.flags.platform} has no KV bucket yet (it is created when the app first uses kv())`,
        { exit: ExitCode.NotFound },
      );
    let revision: number;
    try {
      revision = await kv.put(this.args.key, this.args.value);
    } catch (err) {
      this.error(`cannot write key ${JSON.stringify(this.args.key)}: ${(err as Error).message}`, {
        exit: ExitCode.Failed,
      });
    }
    this.log(`${this.args.key} = ${this.args.value} (revision ${revision})`);
    return { app: this.args.app, key: this.args.key, revision };
  }
}
