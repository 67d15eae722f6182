import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { realClock, type Clock, type Epoch } from '@gc/core';
import { checkIntegrity, formatChecksum, hashFile } from '@gc/snapshot';
import { PromotionError } from './errors.js';
import { fsyncDir } from './position.js';
import {
  createPrimary,
  primarySidecarPath,
  type Primary,
  type PrimaryOptions,
  type PrimaryStopResult,
} from './primary.js';
import {
  createReplica,
  type PromotionTimings,
  type Replica,
  type ReplicaEvent,
  type ReplicaOptions,
} from './replica.js';
import type { UnreplicatedWritesError } from './errors.js';

/** Options of {@link promote}: the new primary's options (path, platform and app come from the replica's). */
export type PromoteOptions = Partial<Omit<PrimaryOptions, 'platform' | 'app' | 'path'>> & {
  /** Epoch of the new leadership. */
  epoch: Epoch;
  /** Time allowed to catch up to the end of the stream, in ms. Default 60000. */
  catchUpTimeoutMs?: number;
  /** Run `PRAGMA integrity_check` before going live. Default true. */
  integrityCheck?: boolean;
};

/** Result of {@link promote}. */
export interface PromoteResult {
  primary: Primary;
  timings: PromotionTimings;
}

/**
 * Turns a replica into the primary: (1) catch up to the end of the stream, (2) verify the copy (page
 * checksum against the stream's, `PRAGMA integrity_check`), (3) move it into the data path (stale
 * `-wal`/`-shm` files there are removed first), (4) start publishing with the new epoch (an epoch
 * marker fences the previous leader). Each phase is timed. On failure the node stays a replica.
 *
 * @example
 * const { primary, timings } = await promote(replica, { platform: 'prod', app: 'orders', path }, nc, { epoch: 8 });
 */
export async function promote(
  replica: Replica,
  where: Pick<ReplicaOptions, 'platform' | 'app' | 'path'>,
  nc: NatsConnection,
  options: PromoteOptions,
  clock: Clock = realClock,
): Promise<PromoteResult> {
  const t0 = clock.now();
  let pos;
  try {
    pos = await replica.catchUp(options.catchUpTimeoutMs ?? 60_000);
  } catch (err) {
    throw new PromotionError(`catch-up did not finish: ${(err as Error).message}`, { cause: err });
  }
  await replica.close();
  const t1 = clock.now();
  const src = replica.replicaPath;
  const hashes = hashFile(src, { pageSizeBytes: pos.pageSizeBytes || undefined, pageCount: pos.dbPages });
  if (formatChecksum(hashes.checksum) !== pos.checksum) {
    throw new PromotionError(
      `replica checksum ${formatChecksum(hashes.checksum)} != position ${pos.checksum}`,
    );
  }
  if (options.integrityCheck !== false && pos.dbPages > 0) {
    try {
      checkIntegrity(src);
    } catch (err) {
      throw new PromotionError((err as Error).message, { cause: err });
    }
  }
  const t2 = clock.now();
  if (pos.dbPages === 0) {
    // The stream holds no database yet (a new app, or one adopted into gc): the data path is kept as it
    // is, so an existing database there is adopted (the primary publishes it in full) and a missing one
    // is created in WAL mode. Only the empty replica file goes.
    rmSync(src, { force: true });
  } else {
    for (const f of [`${where.path}-wal`, `${where.path}-shm`, primarySidecarPath(where.path)])
      rmSync(f, { force: true });
    if (existsSync(where.path)) rmSync(where.path);
    renameSync(src, where.path);
  }
  for (const f of [`${src}.gc-position.json`, `${src}.gc-journal`]) rmSync(f, { force: true });
  fsyncDir(dirname(where.path));
  const t3 = clock.now();
  const { catchUpTimeoutMs: _c, integrityCheck: _i, ...primaryOptions } = options;
  const primary = await createPrimary(nc, {
    ...primaryOptions,
    platform: where.platform,
    app: where.app,
    path: where.path,
  });
  const t4 = clock.now();
  return {
    primary,
    timings: { catchUpMs: t1 - t0, verifyMs: t2 - t1, moveMs: t3 - t2, startMs: t4 - t3, totalMs: t4 - t0 },
  };
}

/** Result of {@link demote}. */
export interface DemoteResult {
  replica: Replica;
  /** What the primary's stop reported. */
  stopped: PrimaryStopResult;
  /** Set when local writes never reached the stream: the file was set aside (see the error), not merged. */
  unreplicated: UnreplicatedWritesError | undefined;
  /** Durations in ms. */
  timings: { stopMs: number; replicaMs: number; totalMs: number };
}

/**
 * Turns a primary into a replica: stops publishing (final capture and publish if still leader), closes
 * the database, then starts a replica that adopts the file if the stream holds its exact state, or
 * moves it aside and reports `unreplicated-writes` (never merged). Every other process using the
 * database must have closed it first.
 */
export async function demote(
  primary: Primary,
  nc: NatsConnection,
  options: Partial<ReplicaOptions> & Pick<ReplicaOptions, 'platform' | 'app' | 'path'>,
  clock: Clock = realClock,
): Promise<DemoteResult> {
  const t0 = clock.now();
  const stopped = await primary.stop();
  const t1 = clock.now();
  let unreplicated: UnreplicatedWritesError | undefined;
  const replica = await createReplica(nc, {
    ...options,
    onEvent: (e: ReplicaEvent) => {
      if (e.type === 'unreplicated-writes') unreplicated = e.error;
      options.onEvent?.(e);
    },
  });
  const t2 = clock.now();
  return {
    replica,
    stopped,
    unreplicated,
    timings: { stopMs: t1 - t0, replicaMs: t2 - t1, totalMs: t2 - t0 },
  };
}
