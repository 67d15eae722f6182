import { closeSync, fsyncSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SnapshotSource } from '@gc/snapshot';
import { PageHashes, formatChecksum, headerPageSize, openDatabase, pageHash } from '@gc/sqlite';
import type { WalPosition } from '../position.js';
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
  const reader = openDatabase(ctx.o.path, { fileMustExist: true });
  let bytes: Buffer;
  let fromTxid: number;
  try {
    reader.pragma(`busy_timeout = ${ctx.o.busyTimeoutMs}`);
    reader.pragma('wal_autocheckpoint = 0');
    // No write lock (another process writing back to back would starve it): the reader's snapshot is some
    // commit at or after the last round's end. A round right after it, without grouping, gives every
    // commit up to the WAL's end its own history entry, so the snapshot is exactly one of them.
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM sqlite_master').get();
    fromTxid = ctx.capturedTxid;
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
  let entry: HistoryEntry | undefined;
  for (let i = outbox.history.length - 1; i >= 0; i--) {
    const e = outbox.history[i]!;
    if (e.txid < fromTxid) break;
    if (e.after === hashes.checksum && e.dbPages === hashes.pageCount) {
      entry = e;
      break;
    }
  }
  if (!entry) {
    throw new Error(
      `snapshot checksum ${formatChecksum(hashes.checksum)} (${hashes.pageCount} pages) matches no transaction captured since txid ${fromTxid}; retry`,
    );
  }
  if (outbox.acked.txid < entry.txid) await sync();
  const seq = entry.seq; // set by the ack (sync above waited for it)
  const path = join(dir, 'snapshot.db');
  writeFileSync(path, bytes);
  const fd = openSync(path, 'r+');
  fsyncSync(fd);
  closeSync(fd);
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
