import { Command, Flags, type Interfaces } from '@oclif/core';
import { connect, isGcError, type ConnectOptions } from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';

/** Exit codes scripts can rely on. */
export const ExitCode = {
  Ok: 0,
  /** The command failed (bad input, refused operation). */
  Failed: 1,
  /** The command line does not parse (oclif's own flag errors, `gc node label` changes). */
  Usage: 2,
  /** NATS could not be reached or refused us. */
  Unreachable: 3,
  /** The thing asked for does not exist (unknown app, node, key). */
  NotFound: 4,
} as const;

/**
 * Shared flags of every command that talks to a running platform: `--server` (`GC_NATS_URL`),
 * `--creds`, `--platform` (`GC_PLATFORM`), `--timeout`, and `--json` (stable machine-readable output).
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = {
    server: Flags.string({
      char: 's',
      description: 'NATS server URL(s), comma-separated',
      env: 'GC_NATS_URL',
      default: 'nats://127.0.0.1:4222',
      helpGroup: 'GLOBAL',
    }),
    creds: Flags.string({ description: 'NATS credentials file', env: 'GC_NATS_CREDS', helpGroup: 'GLOBAL' }),
    platform: Flags.string({
      char: 'p',
      description: 'platform name',
      env: 'GC_PLATFORM',
      default: 'dev',
      helpGroup: 'GLOBAL',
    }),
    timeout: Flags.integer({
      description: 'how long to wait for answers, in ms',
      default: 1000,
      min: 50,
      helpGroup: 'GLOBAL',
    }),
  };

  protected flags!: Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;
  protected args!: Interfaces.InferredArgs<T['args']>;
  #nc: NatsConnection | undefined;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as typeof this.flags;
    this.args = args as typeof this.args;
  }

  /**
   * Connects with the shared flags (lazily, once); a failure exits with code 3 and says what to check. A
   * one-shot command does not reconnect; one that runs on across server restarts (`gc drill`, which may
   * restart the server itself, or runs on a schedule) asks for `reconnect`.
   */
  protected async nats(o: { reconnect?: boolean } = {}): Promise<NatsConnection> {
    if (this.#nc) return this.#nc;
    const opts: Partial<ConnectOptions> = {
      servers: this.flags.server.split(',').map((s) => s.trim()),
      name: 'gc-cli',
      timeoutMs: Math.max(this.flags.timeout, 2000),
      reconnectForever: o.reconnect === true,
      maxReconnectAttempts: 0,
      ...(this.flags.creds ? { credentials: { credsFile: this.flags.creds } } : {}),
    };
    try {
      this.#nc = await connect(opts);
    } catch (err) {
      this.error(isGcError(err) ? err.message : String(err), { exit: ExitCode.Unreachable });
    }
    return this.#nc;
  }

  /** How long a command waits for its change to show: 30 times --timeout, at least 30 s. */
  protected waitLimitMs(): number {
    return Math.max(this.flags.timeout * 30, 30_000);
  }

  /**
   * Ends a command whose change did not show in time: says `why` on stderr and exits 1, also with `--json`
   * (scripts trust the exit code: `gc node drain n --json && reboot`), which still prints `result`.
   */
  protected failed<R>(why: string, result: R): R {
    this.logToStderr(why);
    if (!this.jsonEnabled()) this.exit(ExitCode.Failed);
    process.exitCode = ExitCode.Failed;
    return result;
  }

  /** Keeps the exit code of `this.error(..., { exit })` also in `--json` mode. */
  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    if (typeof err.oclif?.exit === 'number') process.exitCode = err.oclif.exit;
    return super.catch(err);
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    // Cleanup at the end of a command: its result (or error) is already out.
    await this.#nc?.close().catch(() => undefined);
    return super.finally(err);
  }
}
