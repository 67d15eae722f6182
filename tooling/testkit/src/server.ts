import { NatsServerProcess, type ServerConfig, type ServerFlavor } from '@gc/nats-server';
import { makeOwnedTempDir, removeDir, track } from './cleanup.js';
import { freePort } from './ports.js';

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Server name (`server_name`). Default `s-<port>`. */
  name?: string;
  /** Enable JetStream. Default true. */
  jetstream?: boolean;
  /** JetStream domain (hub/leaf setups). */
  domain?: string;
  /** Client port. Default: a free port. */
  port?: number;
  /** Cluster membership (see `ServerConfig.cluster`). */
  cluster?: ServerConfig['cluster'];
  /** Accept leaf node connections on this port. */
  leafListenPort?: number;
  /** Connect as a leaf node to these URLs (`nats-leaf://host:port`). */
  leafRemotes?: string[];
  /** `max_payload` in bytes. */
  maxPayload?: number;
  /** Which binary: the default (newest) or the 2.10.x compatibility build. */
  flavor?: ServerFlavor;
  /** Binary path; overrides `flavor`. */
  bin?: string;
  /** Extra configuration appended verbatim. */
  extraConfig?: string;
}

/**
 * A real nats-server process on loopback in its own temp dir (config, log, JetStream store). Keeps
 * its store across restarts; cleaned up by {@link NatsServer.close}, after every test file, and at exit.
 */
export class NatsServer {
  readonly #proc: NatsServerProcess;
  readonly #untrack: () => void;
  #closed = false;

  private constructor(proc: NatsServerProcess) {
    this.#proc = proc;
    this.#untrack = track({ close: () => this.close(), killSync: () => this.#killSync() });
  }

  /** Creates the server's dir and config, and starts it. */
  static async start(opts: ServerOptions = {}): Promise<NatsServer> {
    const port = opts.port ?? (await freePort());
    const httpPort = await freePort();
    const name = opts.name ?? `s-${port}`;
    const dir = await makeOwnedTempDir(`nats-${name}`);
    let server: NatsServer;
    try {
      server = new NatsServer(
        new NatsServerProcess({
          dir,
          jetstream: opts.jetstream !== false,
          ...(opts.bin ? { bin: opts.bin } : {}),
          ...(opts.flavor ? { flavor: opts.flavor } : {}),
          config: {
            name,
            port,
            httpPort,
            ...(opts.domain ? { domain: opts.domain } : {}),
            ...(opts.cluster ? { cluster: opts.cluster } : {}),
            ...(opts.leafListenPort ? { leafListenPort: opts.leafListenPort } : {}),
            ...(opts.leafRemotes ? { leafRemotes: opts.leafRemotes } : {}),
            ...(opts.maxPayload ? { maxPayload: opts.maxPayload } : {}),
            ...(opts.extraConfig ? { extra: opts.extraConfig } : {}),
          },
        }),
      );
    } catch (err) {
      removeDir(dir);
      throw err;
    }
    try {
      await server.start();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  get name(): string {
    return this.#proc.config.name;
  }
  get port(): number {
    return this.#proc.config.port;
  }
  get dir(): string {
    return this.#proc.dir;
  }
  get version(): string {
    return this.#proc.version;
  }
  /** `nats://127.0.0.1:<port>`. */
  get url(): string {
    return this.#proc.url;
  }
  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.#proc.pid;
  }
  /** True while the process runs. */
  get running(): boolean {
    return this.#proc.running;
  }

  /** Starts the process (again) with the same config, store and port. */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`server ${this.name} is closed`));
    return this.#proc.start();
  }

  /** GETs a monitoring endpoint (`varz`, `jsz`, `routez`, `leafz`, `healthz`, ...) as JSON. */
  monitor<T = Record<string, unknown>>(endpoint: string): Promise<T> {
    return this.#proc.monitor<T>(endpoint);
  }

  /** Stops with `signal` (SIGTERM clean, SIGKILL crash); keeps the store for restart(). */
  stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    return this.#proc.stop(signal, timeoutMs);
  }

  /** SIGKILL: the server dies without a clean shutdown. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  /** Stops (with `signal`) and starts again with the same store and port. */
  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.start();
  }

  /** SIGSTOP: the server freezes (connections stay open, nothing is answered). */
  pause(): void {
    this.#proc.signal('SIGSTOP');
  }

  /** SIGCONT after {@link NatsServer.pause}. */
  resume(): void {
    this.#proc.signal('SIGCONT');
  }

  /** Last lines of the server log. */
  log(lines = 40): string {
    return this.#proc.log(lines);
  }

  /** Stops the server and deletes its dir. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#proc.stop('SIGTERM', 3000);
    removeDir(this.dir);
    this.#untrack();
  }

  #killSync(): void {
    try {
      this.#proc.signal('SIGKILL');
    } finally {
      removeDir(this.dir);
    }
  }
}

/** Starts one nats-server (JetStream on by default). See {@link ServerOptions}. */
export function startServer(opts: ServerOptions = {}): Promise<NatsServer> {
  return NatsServer.start(opts);
}
