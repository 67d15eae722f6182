import { spawn } from 'node:child_process';
import { TimeoutError } from './errors.js';

/** What a finished command returned. */
export interface CommandResult {
  /** Exit code, or null when a signal ended it. */
  exitCode: number | null;
  /** Everything it wrote to stdout. */
  stdout: string;
  /** Everything it wrote to stderr. */
  stderr: string;
  /** The command line (`file` and `args` joined by spaces), for error messages. */
  command: string;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Kill the command (SIGKILL) and reject with a `TimeoutError` after this many ms. */
  timeoutMs: number;
  /** Environment (PATH decides where the program is found). Default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /**
   * What to reject with when the program cannot be started at all (`ENOENT` for a missing one):
   * a package's own typed error. Default the spawn error itself.
   */
  spawnError?: (err: NodeJS.ErrnoException) => Error;
}

/**
 * Runs `file args` without a shell, collects its stdout and stderr, and resolves once it has
 * exited, whatever its exit code. Rejects with a `TimeoutError` naming the command line after
 * `timeoutMs` (the command is killed), or with `spawnError(err)` when it could not be started.
 *
 * @example
 * const r = await runCommand('ip', ['-j', 'addr', 'show'], { timeoutMs: 5000 });
 * if (r.exitCode !== 0) throw new Error(`${r.command} failed: ${r.stderr.trim()}`);
 */
export function runCommand(file: string, args: string[], opts: RunCommandOptions): Promise<CommandResult> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new TimeoutError(command, opts.timeoutMs));
    }, opts.timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(opts.spawnError ? opts.spawnError(err) : err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stdout, stderr, command });
    });
  });
}
