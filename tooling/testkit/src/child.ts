import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { runPrefix, track } from './cleanup.js';
import { waitFor } from './wait.js';

/** Options of {@link spawnNode}. */
export interface SpawnNodeOptions {
  /** Arguments after the entry. */
  args?: string[];
  /** Extra environment (merged over the current one). */
  env?: Record<string, string>;
  /** Working directory. Default the current one. */
  cwd?: string;
  /** A label for logs and the process marker. Default the entry's file name. */
  label?: string;
  /** Forward the child's stdout/stderr to this process's stderr. Default false (kept in `output`). */
  inheritOutput?: boolean;
}

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const tsxLoader = (): string => pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/**
 * A Node program running as a child process in its own process group, with an IPC channel.
 * Faults are real signals: {@link ChildNode.kill} (SIGKILL by default), {@link ChildNode.pause}
 * (SIGSTOP) and {@link ChildNode.resume} (SIGCONT).
 */
export class ChildNode {
  readonly label: string;
  readonly #proc: ChildProcess;
  readonly #messages: unknown[] = [];
  readonly #output: string[] = [];
  readonly exited: Promise<ChildExit>;
  #untrack: () => void;

  constructor(proc: ChildProcess, label: string, inheritOutput: boolean) {
    this.#proc = proc;
    this.label = label;
    proc.on('message', (m) => this.#messages.push(m));
    const collect = (chunk: Buffer) => {
      const s = chunk.toString();
      this.#output.push(s);
      if (this.#output.length > 2000) this.#output.splice(0, 1000);
      if (inheritOutput) process.stderr.write(`[${label}] ${s}`);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.#untrack = track({
      close: async () => void (await this.stop()),
      killSync: () => this.#killGroup('SIGKILL'),
    });
    void this.exited.then(() => this.#untrack());
  }

  /** The child's process id. */
  get pid(): number {
    return this.#proc.pid!;
  }

  /** True until the child exits. */
  get running(): boolean {
    return this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** Messages the child sent with `process.send`, in order. */
  messages<T = unknown>(): T[] {
    return this.#messages as T[];
  }

  /** Everything the child wrote to stdout and stderr (recent part). */
  output(): string {
    return this.#output.join('');
  }

  /** Sends a message to the child (`process.on('message')` there). */
  send(message: unknown): void {
    this.#proc.send(message as object);
  }

  /** Waits for a message matching `predicate` (including ones already received) and returns it. */
  async waitForMessage<T = unknown>(
    predicate: (m: T) => boolean,
    timeoutMs = 10_000,
    what = 'message',
  ): Promise<T> {
    return waitFor(() => (this.#messages as T[]).find(predicate), {
      timeoutMs,
      message: `${what} from child ${this.label}${this.running ? '' : ' (child has exited)'}\n${this.output().slice(-2000)}`,
    });
  }

  #killGroup(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      this.#proc.kill(signal);
    }
  }

  /** Sends `signal` to the child's whole process group (default SIGKILL) and waits for the child to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildExit> {
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.#killGroup('SIGCONT');
    this.#killGroup(signal);
    return this.exited;
  }

  /** SIGSTOP: the child freezes (its sockets stay open). */
  pause(): void {
    this.#killGroup('SIGSTOP');
  }

  /** SIGCONT after {@link ChildNode.pause}. */
  resume(): void {
    this.#killGroup('SIGCONT');
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
  async stop(graceMs = 3000): Promise<ChildExit> {
    if (!this.running) return this.exited;
    this.#killGroup('SIGCONT');
    this.#killGroup('SIGTERM');
    const timer = setTimeout(() => this.#killGroup('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

/**
 * Runs a Node program (`.ts` files run through tsx and read workspace packages from source; `.js`
 * files run as they are, with built packages) as a
 * child process in its own process group, with an IPC channel and with the same Node binary as the
 * test (so Node 24 runs stay on Node 24).
 *
 * @example
 * const child = spawnNode(new URL('./fixtures/leader.ts', import.meta.url).pathname, { env: { NATS_URL: url } });
 * await child.waitForMessage((m) => m.type === 'ready');
 * await child.kill(); // SIGKILL
 */
export function spawnNode(entry: string, opts: SpawnNodeOptions = {}): ChildNode {
  const label = opts.label ?? entry.split('/').pop()!;
  const isTs = /\.[cm]?ts$/.test(entry);
  // TypeScript entries run through tsx and read workspace packages from source; JavaScript entries
  // (built binaries) use the packages' built dist like a user would.
  const execArgv = isTs ? ['--conditions=@gc/source', '--import', tsxLoader()] : [];
  // The marker in the environment lets the global teardown and scripts/check-leftovers.mjs find
  // (and reap) the child and anything it started, even if this worker dies.
  const proc = fork(entry, opts.args ?? [], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env, GC_TESTKIT_CHILD: `${runPrefix()}${label}` },
    execArgv,
    execPath: process.execPath,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  return new ChildNode(proc, label, opts.inheritOutput ?? false);
}
