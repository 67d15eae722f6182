// The `gc dev` node processes seen from outside: their pid files, the restart policy they are supervised
// with, and killing the leader of an app (`gc dev kill`, `gc dev --chaos`). Used by startDevCluster (dev.ts).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultRestartPolicy, type RestartPolicy } from '@gc/backends';
import type { AdminClient } from '@gc/platform';

/** Path of the pid file of a dev node. */
export function devPidFile(dir: string, nodeId: string): string {
  return join(resolve(dir), 'nodes', `${nodeId}.pid`);
}

/**
 * The restart policy of the dev nodes (the process backend's, `@gc/backends`): every exit restarts the node,
 * after `restartDelayMs`, doubling with each further restart within the minute up to 10 s; a node that died
 * 5 times within a minute is given up on (a crash loop: its log says why). `restartDelayMs: 0` never restarts.
 * `overrides` win.
 */
export function devRestartPolicy(
  restartDelayMs: number,
  overrides: Partial<RestartPolicy> = {},
): RestartPolicy {
  return {
    ...defaultRestartPolicy(),
    mode: restartDelayMs > 0 ? 'always' : 'never',
    initialBackoffMs: restartDelayMs,
    maxBackoffMs: Math.max(restartDelayMs, 10_000),
    factor: 2,
    maxRestarts: 5,
    windowMs: 60_000,
    ...overrides,
  };
}

/** SIGKILLs the dev node process that leads `app` (found with the admin API and the dev pid files). */
export async function killDevLeader(admin: AdminClient, dir: string, app: string): Promise<string> {
  const nodes = await admin.nodes(500);
  let leader: string | null = null;
  let epoch = -1;
  for (const n of nodes) {
    const a = n.apps.find((x) => x.name === app);
    if (a?.leader && a.epoch > epoch) {
      leader = a.leader;
      epoch = a.epoch;
    }
  }
  if (!leader)
    throw new Error(
      `app ${app} has no leader in the dev cluster (is gc dev running? apps: ${[...new Set(nodes.flatMap((n) => n.apps.map((a) => a.name)))].join(', ') || 'none'})`,
    );
  let pid: number;
  try {
    pid = Number(readFileSync(devPidFile(dir, leader), 'utf8').trim());
  } catch {
    throw new Error(`no pid file for ${leader} in ${resolve(dir, 'nodes')}: is it a node started by gc dev?`);
  }
  process.kill(pid, 'SIGKILL');
  return leader;
}
