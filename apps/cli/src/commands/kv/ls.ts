import { BaseCommand, ExitCode } from '../../base.js';
import { appArg } from '../../flags.js';
import { openAppKv } from '../../kv-open.js';

export default class KvLs extends BaseCommand<typeof KvLs> {
  static override summary = "List the keys of an app's KV bucket ({platform}_{app}).";
  static override args = { app: appArg };
  static override examples = ['<%= config.bin %> kv ls orders --json'];

  async run(): Promise<{ app: string; keys: string[] }> {
    const kv = await openAppKv(await this.nats(), this.flags.platform, this.args.app);
    if (!kv)
      this.error(
        `app ${this.args.app} of platform ${this.flags.platform} has no KV bucket yet (it is created when the app first uses kv())`,
        { exit: ExitCode.NotFound },
      );
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    keys.sort();
    for (const k of keys) this.log(k);
    return { app: this.args.app, keys };
  }
}
