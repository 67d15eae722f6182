import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  closedSignal,
  realClock,
  resourceNames,
  silentLogger,
  type Clock,
  type Closable,
  type Logger,
  type TimerHandle,
} from '@gc/core';
import { defaultSnapshotRetention } from './store.js';
import type {
  SnapshotInfo,
  SnapshotPosition,
  SnapshotProgress,
  SnapshotRetention,
  SnapshotStore,
} from './types.js';

/** A database copy consistent at a txid, produced by whoever owns the database (the WAL primary). */
export interface SnapshotSource {
  /** Path of the quiescent copy. */
  path: string;
  /** Where it sits in the history. */
  position: SnapshotPosition;
}

/** What a {@link Snapshotter} reports. */
export type SnapshotterEvent =
  | { type: 'snapshot'; info: SnapshotInfo; durationMs: number }
  | { type: 'pruned'; deleted: SnapshotInfo[]; oldestKept?: SnapshotInfo; trimmedBelowSeq?: number }
  | { type: 'error'; error: Error };

/** Options of {@link createSnapshotter}. */
export interface SnapshotterOptions {
  /** Platform name; with `app` names the WAL stream to trim. */
  platform: string;
  /** App name. */
  app: string;
  /** Time between snapshots in ms. Default 10 minutes. 0 = only on {@link Snapshotter.snapshotNow}. */
  intervalMs: number;
  /** Retention. Default {@link defaultSnapshotRetention}. */
  retention: SnapshotRetention;
  /** Purge the WAL stream below the oldest kept snapshot after pruning. Default true. */
  trimStream: boolean;
  /**
   * How the stream is trimmed: purges below `belowSeq` and returns the sequence actually purged below (0:
   * nothing). Default: a purge that always keeps the stream's last message, so the stream never forgets
   * where the history ends; `@gc/wal`'s `trimWalStream` keeps the whole last transaction.
   */
  trim: ((belowSeq: number) => Promise<number>) | undefined;
  /** Scratch directory for copies. Default the OS temp dir. */
  scratchDir: string;
  /** Injectable clock. Default the real clock. */
  clock: Clock;
  /** Event listener. One that throws is logged (`logger`); the snapshot, prune and trim go on. */
  onEvent: (e: SnapshotterEvent) => void;
  /** Where a throwing event listener is reported. Default silent. */
  logger: Logger;
  /** Progress of uploads. */
  onProgress: (p: SnapshotProgress) => void;
  /**
   * The txid the database is at now (cheap; for example the primary's captured txid). When given, a
   * scheduled snapshot is skipped while it equals the txid of the last snapshot this snapshotter took: an
   * idle database is not copied, uploaded and pruned again every interval. `snapshotNow()` always takes one.
   */
  currentTxid: (() => number) | undefined;
}

/** Defaults of {@link SnapshotterOptions} (platform and app have none). */
export function defaultSnapshotterOptions(): Omit<SnapshotterOptions, 'platform' | 'app'> {
  return {
    intervalMs: 10 * 60_000,
    currentTxid: undefined,
    retention: defaultSnapshotRetention(),
    trimStream: true,
    trim: undefined,
    scratchDir: tmpdir(),
    clock: realClock,
    onEvent: () => undefined,
    logger: silentLogger,
    onProgress: () => undefined,
  };
}

/** Takes snapshots periodically, applies retention and trims the WAL stream below the oldest kept one. */
export interface Snapshotter extends Closable {
  /** Takes one snapshot now (waits for one in progress first), prunes and trims. */
  snapshotNow(): Promise<SnapshotInfo>;
  /** Stops the timer and waits for a snapshot in progress. Idempotent. */
  close(): Promise<void>;
}

/**
 * Periodic snapshots. `take(dir)` must write a copy consistent at a txid into `dir` and say where it
 * sits (the WAL primary's `snapshotTo` does that).
 *
 * @example
 * const s = createSnapshotter(nc, store, (dir) => primary.snapshotTo(dir), { platform: 'prod', app: 'orders', intervalMs: 60_000 });
 */
export function createSnapshotter(
  nc: NatsConnection,
  store: SnapshotStore,
  take: (dir: string) => Promise<SnapshotSource>,
  options: Partial<SnapshotterOptions> & Pick<SnapshotterOptions, 'platform' | 'app'>,
): Snapshotter {
  const o = { ...defaultSnapshotterOptions(), ...options };
  const emit = (e: SnapshotterEvent) => {
    try {
      o.onEvent(e);
    } catch (err) {
      o.logger.error('snapshotter event listener threw', { err, event: e.type });
    }
  };
  const stream = resourceNames(o.platform).app(o.app).walStream;
  let timer: TimerHandle | undefined;
  let closed = false;
  const ended = closedSignal();
  let running: Promise<SnapshotInfo> | undefined;
  /** Txid of the last snapshot taken here. */
  let lastTxid: number | undefined;

  const once = async (): Promise<SnapshotInfo> => {
    const started = o.clock.now();
    const dir = mkdtempSync(join(o.scratchDir, 'gc-snap-'));
    try {
      const src = await take(dir);
      const info = await store.put(src.path, src.position, { onProgress: o.onProgress });
      lastTxid = info.txid;
      emit({ type: 'snapshot', info, durationMs: o.clock.now() - started });
      const pruned = await store.prune(o.retention);
      let trimmedBelowSeq: number | undefined;
      if (o.trimStream && pruned.oldestKept) {
        const below = pruned.oldestKept.seq + 1;
        const purged = o.trim
          ? await o.trim(below)
          : await (async () => {
              const jsm = await jetstreamManager(nc);
              const info = await jsm.streams.info(stream);
              const keepFrom = Math.min(below, info.state.last_seq);
              if (keepFrom <= info.state.first_seq) return 0;
              await jsm.streams.purge(stream, { seq: keepFrom });
              return keepFrom;
            })();
        if (purged > 0) trimmedBelowSeq = purged;
      }
      emit({ type: 'pruned', deleted: pruned.deleted, oldestKept: pruned.oldestKept, trimmedBelowSeq });
      return info;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const snapshotNow = async (): Promise<SnapshotInfo> => {
    // The snapshot in progress reports its own failure to its caller; this one only waits for it.
    while (running) await running.catch(() => undefined);
    running = once();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  };

  const schedule = () => {
    if (closed || o.intervalMs <= 0) return;
    timer = o.clock.setTimeout(() => {
      if (lastTxid !== undefined && o.currentTxid?.() === lastTxid) {
        schedule(); // nothing committed since the last snapshot
        return;
      }
      snapshotNow()
        .catch((error: Error) => emit({ type: 'error', error }))
        .finally(schedule);
    }, o.intervalMs);
  };
  schedule();

  const close = async () => {
    closed = true;
    try {
      if (timer) o.clock.clearTimeout(timer);
      // The snapshot in progress reports its own failure to its caller; closing only waits for it.
      await running?.catch(() => undefined);
    } finally {
      ended.resolve();
    }
  };
  return { snapshotNow, close, closed: () => ended.promise, [Symbol.asyncDispose]: close };
}
