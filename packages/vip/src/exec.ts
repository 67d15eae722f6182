import { spawnSync } from 'node:child_process';
import { runCommand, type CommandResult } from '@gc/core';

/** What a finished command returned (`run` also fills `command`, the command line). */
export type ExecResult = Pick<CommandResult, 'exitCode' | 'stdout' | 'stderr'>;

/** Thrown (as the cause of a typed error) when the program could not be started at all. */
export class SpawnFailure extends Error {
  readonly errno: string | undefined;
  constructor(file: string, cause: NodeJS.ErrnoException) {
    super(`cannot run ${file}: ${cause.message}`, { cause });
    this.name = 'SpawnFailure';
    this.errno = cause.code;
  }
}

/**
 * Runs `file args`, collects its output, kills it after `timeoutMs`. Never uses a shell. A program
 * that cannot be started rejects with {@link SpawnFailure}.
 */
export function run(
  file: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<ExecResult> {
  return runCommand(file, args, { ...opts, spawnError: (err) => new SpawnFailure(file, err) });
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
