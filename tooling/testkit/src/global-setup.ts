// vitest globalSetup: after the whole run, reaps any testkit process a crashed worker left behind
// (found by the testkit marker in its command line) and removes leftover testkit temp dirs.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { runPrefix } from './cleanup.js';

function reap(): string[] {
  const prefix = runPrefix();
  const reaped: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    let environ = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    if (
      (cmd.includes(prefix) || environ.includes(`GC_TESTKIT_CHILD=${prefix}`)) &&
      Number(pid) !== process.pid
    ) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        reaped.push(`${pid} ${cmd.replace(/\0/g, ' ').slice(0, 120)}`);
      } catch {
        // already gone
      }
    }
  }
  for (const d of readdirSync(tmpdir())) {
    if (d.startsWith(prefix)) {
      rmSync(join(tmpdir(), d), { recursive: true, force: true });
      reaped.push(`dir ${d}`);
    }
  }
  return reaped;
}

export function setup(): void {
  process.env.GC_TESTKIT_RUN ??= randomBytes(4).toString('hex');
}

export function teardown(): void {
  const reaped = reap();
  if (reaped.length) {
    console.warn(`[testkit] reaped leftovers of crashed test workers:\n  ${reaped.join('\n  ')}`);
  }
}
