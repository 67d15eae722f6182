import { spawn } from 'node:child_process';
import { TimeoutError } from '@gc/core';
import { ToolMissingError } from './errors.js';

/** What a finished command returned. */
export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The command line, for error messages. */
  command: string;
}

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
      reject(err.code === 'ENOENT' ? new ToolMissingError(file, opts.missingHint, { cause: err }) : err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stdout, stderr, command });
    });
  });
}
