import { BaseCommand, ExitCode } from '../../base.js';
import { appArg, keyArg } from '../../flags.js';
import { openAppKv } from '../../kv-open.js';

export default class KvGet extends BaseCommand<typeof KvGet> {
  static override summary = "Read a key from an app's KV bucket ({platform}_{app}).";
  static override args = { app: appArg, key: keyArg };
  static override examples = ['<%= config.bin %> kv get orders last-order'];

  async run(): Promise<{ app: string; key: string; value: string; revision: number; created: string }> {
    const kv = await openAppKv(await this.nats(), this.flags.platform, this.args.app);
    if (!kv)
      this.error(
        `app ${this.args.app} of platform ${this.flags.platform} has no KV bucket yet (it is created when the app first uses kv())`,
        { exit: ExitCode.NotFound },
      );
    const e = await kv.get(this.args.key);
    if (!e || e.operation !== 'PUT')
      this.error(`key ${this.args.key} not found in app ${this.args.app}`, { exit: ExitCode.NotFound });
    const out = {
      app: this.args.app,
      key: e.key,
      value: e.string(),
      revision: e.revision,
      created: e.created.toISOString(),
    };
    this.log(out.value);
    return out;
  }
}
