import { runCommand, type CommandResult } from '@gc/core';
import { ToolMissingError } from './errors.js';

/** What a finished command returned (`command` is the command line, for error messages). */
export type ExecResult = CommandResult;

/** Options of {@link runTool}. */
export interface RunToolOptions {
  /** Kill the command after this many ms. */
  timeoutMs: number;
  /** Environment (PATH decides where the tool is found). Default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** What to tell the user when the tool is not installed. */
  missingHint: string;
}

/**
 * Runs `file args` without a shell and collects its output. A missing program becomes
 * {@link ToolMissingError} with `missingHint`; a command over time becomes a `TimeoutError`.
 */
export function runTool(file: string, args: string[], opts: RunToolOptions): Promise<ExecResult> {
  return runCommand(file, args, {
    timeoutMs: opts.timeoutMs,
    env: opts.env,
    spawnError: (err) =>
      err.code === 'ENOENT' ? new ToolMissingError(file, opts.missingHint, { cause: err }) : err,
  });
}
