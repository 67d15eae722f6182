import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { renderServerConfig, type ServerConfig } from './config.js';
import { natsServerVersion, requireNatsServer, type ServerFlavor } from './find.js';

/** Options of {@link NatsServerProcess}. */
export interface NatsServerProcessOptions {
  /** Folder for the config, the log and (unless `config.storeDir` says otherwise) the JetStream store. */
  dir: string;
  /** Server configuration; `storeDir` defaults to `<dir>/store` when `jetstream` is true. */
  config: Omit<ServerConfig, 'storeDir'> & { storeDir?: string };
  /** Enable JetStream. Default true. */
  jetstream?: boolean;
  /** Binary path. Default: {@link requireNatsServer} of `flavor`. */
  bin?: string;
  /** Which binary when `bin` is not given. Default `default`. */
  flavor?: ServerFlavor;
  /** How long start() waits for the client port, in ms. Default 15000. */
  readyTimeoutMs?: number;
}

/**
 * One nats-server process with its config and log in a folder. `start()` resolves when the server
 * accepts client connections; `stop()` signals it and waits for it to exit.
 *
 * @example
 * const s = new NatsServerProcess({ dir: '/tmp/n1', config: { name: 'n1', port: 4222 } });
 * await s.start();
 */
export class NatsServerProcess {
  readonly bin: string;
  readonly version: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly config: ServerConfig;
  readonly #readyTimeoutMs: number;
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(opts: NatsServerProcessOptions) {
    this.bin = opts.bin ?? requireNatsServer(opts.flavor);
    this.version = natsServerVersion(this.bin);
    this.dir = opts.dir;
    this.configFile = join(opts.dir, 'server.conf');
    this.logFile = join(opts.dir, 'server.log');
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;
    this.config = {
      ...opts.config,
      ...(opts.jetstream === false ? {} : { storeDir: opts.config.storeDir ?? join(opts.dir, 'store') }),
    };
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.configFile, renderServerConfig(this.config));
  }

  /** `nats://<host>:<port>`. */
  get url(): string {
    return `nats://${this.config.host ?? '127.0.0.1'}:${this.config.port}`;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** Starts the process (again) with the same config and store; resolves when it accepts clients. */
  async start(): Promise<void> {
    if (this.running) return;
    await assertPortFree(this.config.host ?? '127.0.0.1', this.config.port);
    const logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const proc = spawn(this.bin, ['-c', this.configFile, '-l', this.logFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#proc = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    this.#exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const failed = new Promise<never>((_, reject) =>
      proc.once('exit', (code, sig) =>
        reject(
          new Error(
            `nats-server ${this.config.name} exited during start (code ${code}, signal ${sig}):\n${stderr}${this.log()}`,
          ),
        ),
      ),
    );
    // Read by the race below; this only keeps a failure after the port came up from being unhandled.
    failed.catch(() => undefined);
    await Promise.race([failed, this.#waitPort(logOffset)]);
  }

  /**
   * Ready means the server logged "Server is ready" (JetStream, routes and listeners are set up) in
   * this run's part of the log. A bare TCP connect is not enough: another process may hold the port.
   */
  async #waitPort(logOffset: number): Promise<void> {
    const deadline = performance.now() + this.#readyTimeoutMs;
    while (performance.now() < deadline) {
      if (this.#logSince(logOffset).includes('Server is ready')) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(
      `nats-server ${this.config.name} was not ready within ${this.#readyTimeoutMs} ms:\n${this.log()}`,
    );
  }

  #logSince(offset: number): string {
    try {
      return readFileSync(this.logFile).subarray(offset).toString();
    } catch {
      return '';
    }
  }

  /** GETs a monitoring endpoint (`varz`, `jsz`, `routez`, `leafz`, `healthz`, ...) as JSON; needs `httpPort`. */
  async monitor<T = Record<string, unknown>>(endpoint: string): Promise<T> {
    if (!this.config.httpPort) throw new Error(`nats-server ${this.config.name} has no monitoring port`);
    const res = await fetch(`http://${this.config.host ?? '127.0.0.1'}:${this.config.httpPort}/${endpoint}`);
    return (await res.json()) as T;
  }

  /**
   * Stops the process with `signal` (SIGTERM: clean shutdown; SIGKILL: crash), waits for it to exit,
   * and escalates to SIGKILL after `timeoutMs`. Keeps the folder and store for a later start().
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const proc = this.#proc;
    if (!proc || !this.running) return;
    proc.kill('SIGCONT');
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Sends a signal without waiting (SIGSTOP, SIGCONT, SIGKILL at exit). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#proc?.kill(signal);
  }

  /** The last lines of the server log. */
  log(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** Throws a clear error when something already listens on host:port. */
export async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is already taken by another process: stop it or choose another port`
            : `cannot listen on ${host}:${port}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

/** A free TCP port on `host` (the OS picks one; it is free when this resolves, not reserved). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}
