import { spawn, spawnSync } from 'node:child_process';
import { TimeoutError } from '@gc/core';

/** What a finished command returned. */
export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Thrown (as the cause of a typed error) when the program could not be started at all. */
export class SpawnFailure extends Error {
  readonly errno: string | undefined;
  constructor(file: string, cause: NodeJS.ErrnoException) {
    super(`cannot run ${file}: ${cause.message}`, { cause });
    this.name = 'SpawnFailure';
    this.errno = cause.code;
  }
}

/** Runs `file args`, collects its output, kills it after `timeoutMs`. Never uses a shell. */
export function run(
  file: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new TimeoutError(`${file} ${args.join(' ')}`, opts.timeoutMs));
    }, opts.timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new SpawnFailure(file, err));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stdout, stderr });
    });
  });
}

/** Synchronous variant for the process exit hook, where nothing asynchronous runs any more. */
export function runSync(
  file: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): ExecResult {
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    timeout: opts.timeoutMs,
    env: opts.env ?? process.env,
  });
  return { exitCode: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
