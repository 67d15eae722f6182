import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { realClock, type Clock, type Epoch } from '@gc/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { openSnapshotStore } from '@gc/snapshot';
import { checkIntegrity, formatChecksum, hashFile } from '@gc/sqlite';
import { NotAtTipError, PromotionError, type NotAtTipKind } from './errors.js';
import { fsyncDir, primarySidecarPath, type WalPosition } from './position.js';
import { promotionRefusal } from './decisions.js';
import { historyTip, streamTip, walNames, type HistoryTip } from './stream.js';
import { createPrimary } from './primary.js';
import { createReplica } from './replica.js';
import type {
  Primary,
  PrimaryOptions,
  PrimaryStopResult,
  PromotionTimings,
  Replica,
  ReplicaEvent,
  ReplicaOptions,
} from './types.js';
import type { UnreplicatedWritesError } from './errors.js';

/** Options of {@link promote}: the new primary's options (path, platform and app come from the replica's). */
export type PromoteOptions = Partial<Omit<PrimaryOptions, 'platform' | 'app' | 'path'>> & {
  /** Epoch of the new leadership. */
  epoch: Epoch;
  /**
   * Overall bound of the catch-up, in ms. Default: 30 s + 5 ms per stream message the replica has not yet
   * applied (measured: ~0.05 ms per message on loopback), so a large backlog is not cut short and a small
   * one does not wait long.
   */
  catchUpTimeoutMs?: number;
  /** The catch-up fails when the replica applies nothing for this long, in ms. Default 15000. */
  catchUpStallMs?: number;
  /** Run `PRAGMA integrity_check` before going live. Default true. */
  integrityCheck?: boolean;
};

/** Result of {@link promote}. */
export interface PromoteResult {
  primary: Primary;
  timings: PromotionTimings;
}

/**
 * Turns a replica into the primary: (1) catch up to the history's tip — bootstrapping from a snapshot on the
 * way if the replica is behind the stream's trim point, (2) prove the copy is the tip (txid and checksum
 * equal to the stream's last complete transaction or, on a stream that holds none, the newest snapshot's)
 * and verify it (page checksum, `PRAGMA integrity_check`), (3) move it into the data path (stale
 * `-wal`/`-shm` files there are removed first), (4) start publishing with the new epoch (an epoch marker
 * fences the previous leader). Each phase is timed. A copy that is not proven to be the tip is never
 * published: the promotion fails with a {@link PromotionError} whose cause is a {@link NotAtTipError}, and
 * the node stays a replica. When the stream and every snapshot are gone (`kind: 'history-lost'`), only
 * `unprovenState: 'publish'` (an operator's decision) publishes the copy.
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
  const names = walNames(where.platform, where.app);
  const jsm = await jetstreamManager(nc);
  const snapshots = await openSnapshotStore(nc, { platform: where.platform, app: where.app });
  const force = options.unprovenState === 'publish';
  let pos: WalPosition | undefined;
  let tip: HistoryTip | undefined;
  // The previous leader may still append until our epoch marker fences it: catch up again (a few times) if
  // the tip moved meanwhile.
  for (let round = 0; round < 3; round++) {
    const before = await streamTip(jsm, names);
    const backlog = Math.max(0, before.seq - replica.position().seq);
    try {
      pos = await replica.catchUp(options.catchUpTimeoutMs ?? 30_000 + 5 * backlog, {
        stallTimeoutMs: options.catchUpStallMs ?? 15_000,
      });
    } catch (err) {
      // Cleanup: the catch-up's error is the one to report.
      await replica.close().catch(() => undefined);
      throw new PromotionError(`catch-up did not finish: ${(err as Error).message}`, { cause: err });
    }
    tip = await historyTip(jsm, names, snapshots);
    if (tip.source === 'none' || tip.source === 'lost' || pos.txid >= tip.txid) break;
  }
  await replica.close();
  pos = replica.position();
  const notAtTip = (kind: NotAtTipKind, detail: string) =>
    new PromotionError(`the replica is not the history's tip`, {
      cause: new NotAtTipError(
        kind,
        replica.replicaPath,
        {
          txid: tip?.txid ?? 0,
          checksum:
            !tip || tip.source === 'none' || tip.source === 'lost' ? '' : formatChecksum(tip.checksum),
        },
        { txid: pos?.txid ?? 0, checksum: pos?.checksum ?? '' },
        detail,
      ),
    });
  if (!force && tip) {
    const refusal = promotionRefusal(pos, tip);
    if (refusal) throw notAtTip(refusal.kind, refusal.detail);
  }
  const t1 = clock.now();
  const src = replica.replicaPath;
  if (pos.dbPages > 0 && !existsSync(src)) {
    throw new PromotionError(`the replica file ${src} is missing (the replica was replaced while it closed)`);
  }
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
  const { catchUpTimeoutMs: _c, catchUpStallMs: _s, integrityCheck: _i, ...primaryOptions } = options;
  let primary: Primary;
  try {
    primary = await createPrimary(nc, {
      ...primaryOptions,
      minTxid: Math.max(options.minTxid ?? 0, pos.txid),
      platform: where.platform,
      app: where.app,
      path: where.path,
    });
  } catch (err) {
    if (err instanceof NotAtTipError)
      throw new PromotionError("the promoted copy is not the history's tip", { cause: err });
    throw err;
  }
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
