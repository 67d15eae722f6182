import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SnapshotSource } from '@gc/snapshot';
import { PageHashes, formatChecksum, headerPageSize, openDatabase, pageHash } from '@gc/sqlite';
import { fsyncFile, type WalPosition } from '../position.js';
import type { Capture } from './capture.js';
import type { PrimaryContext } from './context.js';
import type { HistoryEntry, Outbox } from './outbox.js';

/**
 * `Primary.snapshotTo` once the engine has checked it runs and let the round in progress end: a copy of
 * the database in `dir/snapshot.db`, consistent at a captured commit that the stream has acknowledged
 * (`sync` waits for it) by the time it returns.
 */
export async function snapshotAtCommit(
  parts: { ctx: PrimaryContext; capture: Capture; outbox: Outbox },
  dir: string,
  sync: () => Promise<WalPosition>,
): Promise<SnapshotSource> {
  const { ctx, capture, outbox } = parts;
  // The reader's view is the last commit SQLite had published in its WAL index when it began. That may be a
  // commit our capture already read from the file but that SQLite had not published yet (its frames are
  // written before the index is updated): so the view may lie *inside* a group captured earlier. Rounds
  // without grouping right before and right after the reader begins give every commit around its view its
  // own history entry; a writer stopped between its frames and its index update (descheduled on a busy
  // machine) can still defeat that, so a few attempts, yielding a little longer each time so that the writer
  // runs on and publishes its index (1 + 2 + … + 64 ms at most).
  let last: Error | undefined;
  for (let attempt = 0; attempt < 8; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 2 ** (attempt - 1)));
    const taken = readAtCommit(ctx, capture, outbox);
    if ('entry' in taken) return finish(taken, dir, outbox, sync);
    last = taken.error;
  }
  throw last!;
}

function readAtCommit(
  ctx: PrimaryContext,
  capture: Capture,
  outbox: Outbox,
): { bytes: Buffer; entry: HistoryEntry; pageSize: number; hashes: PageHashes } | { error: Error } {
  const fromTxid = ctx.capturedTxid;
  capture.captureRound(false, true);
  outbox.pump();
  const reader = openDatabase(ctx.o.path, { fileMustExist: true });
  let bytes: Buffer;
  try {
    reader.pragma(`busy_timeout = ${ctx.o.busyTimeoutMs}`);
    reader.pragma('wal_autocheckpoint = 0');
    // No write lock (another process writing back to back would starve it).
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM sqlite_master').get();
    capture.captureRound(false, true);
    outbox.pump();
    bytes = reader.serialize();
    reader.exec('COMMIT');
  } finally {
    reader.close();
  }
  const pageSize = bytes.length >= 100 ? headerPageSize(bytes, ctx.o.path) : ctx.pageSize;
  const hashes = new PageHashes();
  for (let p = 1; p * pageSize <= bytes.length; p++) {
    hashes.set(p, pageHash(p, bytes.subarray((p - 1) * pageSize, p * pageSize), pageSize));
  }
  hashes.resize(Math.floor(bytes.length / pageSize));
  for (let i = outbox.history.length - 1; i >= 0; i--) {
    const e = outbox.history[i]!;
    if (e.txid < fromTxid) break;
    if (e.after === hashes.checksum && e.dbPages === hashes.pageCount)
      return { bytes, entry: e, pageSize, hashes };
  }
  return {
    error: new Error(
      `snapshot checksum ${formatChecksum(hashes.checksum)} (${hashes.pageCount} pages) matches no transaction captured since txid ${fromTxid}; retry`,
    ),
  };
}

async function finish(
  taken: { bytes: Buffer; entry: HistoryEntry; pageSize: number; hashes: PageHashes },
  dir: string,
  outbox: Outbox,
  sync: () => Promise<WalPosition>,
): Promise<SnapshotSource> {
  const { bytes, entry, pageSize, hashes } = taken;
  if (outbox.acked.txid < entry.txid) await sync();
  const seq = entry.seq; // set by the ack (sync above waited for it)
  const path = join(dir, 'snapshot.db');
  writeFileSync(path, bytes);
  fsyncFile(path);
  return {
    path,
    position: {
      txid: entry.txid,
      seq,
      epoch: entry.epoch,
      checksum: formatChecksum(hashes.checksum),
      pageSizeBytes: pageSize,
      pageCount: hashes.pageCount,
    },
  };
}
