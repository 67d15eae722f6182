import { Command, Flags } from '@oclif/core';
import { isGcError } from '@gc/core';
import { loadConfig } from '../config.js';
import { startNode } from '../node.js';

export default class Run extends Command {
  static override summary = 'Run a gc node from a config file until SIGTERM or Ctrl-C.';
  static override description = `Reads and validates the config (unknown keys, wrong types and unsafe timings are refused with the path
of the bad field), connects to NATS and runs the node's apps. Environment variables GC_PLATFORM,
GC_NODE_ID, GC_NATS_URL, GC_HTTP_PORT, GC_DATA_DIR and GC_LOG_LEVEL override file values.

SIGTERM/SIGINT: graceful shutdown (active apps run onPassive and step down so a standby takes over at
once). SIGHUP: re-reads the file and applies what can change live: apps added, removed or changed (a
changed app restarts on this node) and node labels; platform, node id, nats and http need a restart.`;
  static override examples = [
    '<%= config.bin %> run --config gc.yaml',
    '<%= config.bin %> run --config gc.yaml --check',
  ];
  static override flags = {
    config: Flags.string({ char: 'c', description: 'path of the config file', default: 'gc.yaml' }),
    check: Flags.boolean({ description: 'validate the config and exit', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Run);
    const load = () => {
      try {
        return loadConfig(flags.config);
      } catch (err) {
        this.error(isGcError(err) ? err.message : String(err), { exit: 1 });
      }
    };
    const config = load();
    if (flags.check) {
      this.log(
        `${flags.config} is valid: platform ${config.platform}, node ${config.node.id}, apps ${Object.keys(config.apps).join(', ') || '(none)'}`,
      );
      return;
    }
    let node;
    try {
      node = await startNode(config);
    } catch (err) {
      this.error(isGcError(err) ? err.message : String(err), {
        exit: isGcError(err, 'GC_CONNECT_FAILED') ? 3 : 1,
      });
    }
    const url = node.platform.httpUrl();
    this.log(
      `node ${config.node.id} of platform ${config.platform} is running${url ? `; status at ${url}/status` : ''}`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGHUP', reload);
        resolve();
      };
      const reload = () => {
        let next;
        try {
          next = loadConfig(flags.config);
        } catch (err) {
          this.warn(`reload refused, keeping the running config: ${(err as Error).message}`);
          return;
        }
        node.reload(next).then(
          (r) =>
            this.log(
              `reloaded: added ${r.added.join(',') || '-'}, removed ${r.removed.join(',') || '-'}, restarted ${r.restarted.join(',') || '-'}${r.needsRestart.length ? `; needs a restart: ${r.needsRestart.join(', ')}` : ''}`,
            ),
          (err: unknown) => this.warn(`reload failed: ${(err as Error).message}`),
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      process.on('SIGHUP', reload);
    });
    this.log('shutting down: stepping down and stopping apps');
    await node.close();
    this.log('stopped');
  }
}
