// The CLI's handle on placement: the platform's placement bucket, the live nodes as the control API answers,
// and audit records written as `gc-cli` with the operator's user name.
import { userInfo } from 'node:os';
import { isGcError } from '@gc/core';
import { ExitCode } from './base.js';
import type { NatsConnection } from '@nats-io/nats-core';
import { createAudit } from '@gc/audit';
import {
  createAdminClient,
  openPlacementBucket,
  placementControl,
  type PlacementControl,
} from '@gc/platform';

/** Placement operations for `platform` over `nc`; `timeoutMs` bounds the wait for live nodes' answers. */
export function cliPlacement(nc: NatsConnection, platform: string, timeoutMs: number): PlacementControl {
  const by = `gc-cli (${safeUser()})`;
  let bucket: ReturnType<typeof openPlacementBucket> | undefined;
  return placementControl(() => (bucket ??= openPlacementBucket(nc, platform, { create: false })), {
    by,
    members: async () =>
      (await createAdminClient(nc, platform).nodes(timeoutMs)).map((n) => ({
        nodeId: n.nodeId,
        labels: n.labels,
      })),
    // Awaited (the command exits right after), at most 2 s.
    audit: (type, data) =>
      Promise.race([
        createAudit(nc, { platform, nodeId: 'gc-cli' }).then((a) =>
          a.record({ type, data: { ...data, by }, severity: 'info' }),
        ),
        new Promise<void>((r) => setTimeout(r, 2000).unref()),
      ])
        .then(() => undefined)
        // The operation itself is done and reported; a failed audit write only loses its trace.
        .catch(() => undefined),
  });
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No user entry (a container with an arbitrary uid): name the uid instead.
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Parses `90s`, `15m`, `2h`, `1d` or a number of ms; throws naming `flag` and what it takes. */
export function parseDurationMs(flag: string, v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  const n = m
    ? Number(m[1]) * { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[(m[2] ?? 'ms') as 'ms']
    : NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(
      `--${flag} ${JSON.stringify(v)}: use a duration like 90s, 15m, 2h, 1d (or ms), greater than 0`,
    );
  return n;
}

/** The exit code for a refused placement operation: 4 for an unknown node or platform, 1 otherwise. */
export function placementExit(err: unknown): number {
  return isGcError(err, 'GC_PLACEMENT_UNKNOWN_NODE') || isGcError(err, 'GC_PLACEMENT_NOT_FOUND')
    ? ExitCode.NotFound
    : ExitCode.Failed;
}
