import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DeliverPolicy } from '@nats-io/jetstream';
import { createFence } from '@gc/core';
import {
  databaseFileInfo,
  formatChecksum,
  hashFile,
  lockPageNumber,
  openDatabase,
  pageHash,
  parseChecksum,
  type PageHashes,
} from '@gc/sqlite';
import { DivergedError, UnreplicatedWritesError } from '../errors.js';
import { fsyncDir, primarySidecarPath, readPosition, writePosition, type WalPosition } from '../position.js';
import { historyTip } from '../stream.js';
import { readWal, type WalReadResult } from '../walfile.js';
import { WalHeader } from '../wire.js';
import { bootstrap, type ReplicaParts } from './bootstrap.js';
import { redoFromStream, type RedoResult } from './redo.js';
import { dropConsumer, type ReplicaContext } from './context.js';

// Start-up of a replica after the ownership checks: adopt a former primary's database at the data path if
// the history holds its exact state (or set it aside), then load the replica's own copy or bootstrap.

/** Page hashes of a database file overlaid with the committed frames of its WAL (what a reader sees). */
function hashWithWal(path: string, wal: WalReadResult): PageHashes {
  const pageSize = wal.header!.pageSizeBytes;
  const dbPages = wal.transactions.at(-1)!.dbSizePages;
  const hashes = hashFile(path, { pageSizeBytes: pageSize, pageCount: dbPages });
  const lock = lockPageNumber(pageSize);
  for (const tx of wal.transactions)
    for (const [p, page] of tx.pages)
      if (p <= dbPages && p !== lock) hashes.set(p, pageHash(p, page, pageSize));
  hashes.resize(dbPages);
  return hashes;
}

/** A database at the data path is a former primary's: adopt it if the stream has its exact state. */
export async function adoptDataPath(ctx: ReplicaContext): Promise<void> {
  const path = ctx.o.path;
  if (!existsSync(path)) return;
  const db = openDatabase(path, { fileMustExist: true });
  db.close(); // recovers and checkpoints a leftover -wal into the file, then removes it
  // A WAL left after that close means another process still has the database open (the close was not
  // the last one, so it neither checkpointed nor removed it): the state is the file plus its WAL.
  const wal = readWal(`${path}-wal`, undefined);
  const inUse = wal.transactions.length > 0;
  const local = inUse ? hashWithWal(path, wal) : hashFile(path);
  const sidecar = readPosition(primarySidecarPath(path), ctx.names.platform, ctx.names.app);
  const found = await findState(ctx, local.checksum, local.pageCount, sidecar?.seq ?? 0);
  if (found && inUse) {
    // Replicated, so nothing is lost, but it cannot be adopted under a process that writes it: set aside
    // (that process keeps its open file) and the replica starts from its own copy or a bootstrap.
    const aside = `${path}.in-use-${ctx.o.clock.wallNow()}`;
    for (const ext of ['', '-wal', '-shm'])
      if (existsSync(`${path}${ext}`)) renameSync(`${path}${ext}`, `${aside}${ext}`);
    rmSync(primarySidecarPath(path), { force: true });
    ctx.o.logger.warn('the database at the data path is open in another process; set aside', { aside });
    return;
  }
  if (!found && !inUse) {
    const tip = await historyTip(ctx.jsm, ctx.names, ctx.o.snapshots);
    if (tip.source === 'none' || tip.source === 'lost') {
      // No replicated history to prove it against (a new app adopting an existing database, or a stream
      // and snapshots deleted): this node's copy is kept — as its replica, claiming the txid it last
      // published — and not set aside. It is not proven either: a promotion refuses to publish it as a
      // continuation of a lost history unless an operator decides to (`gc app recover`).
      ctx.removeReplicaFiles();
      renameSync(path, ctx.replicaPath);
      ctx.pos = {
        txid: sidecar?.txid ?? 0,
        seq: 0,
        epoch: sidecar?.epoch ?? 0,
        checksum: formatChecksum(local.checksum),
        pageSizeBytes: local.pageCount ? databaseFileInfo(ctx.replicaPath).pageSizeBytes : 0,
        dbPages: local.pageCount,
      };
      writePosition(ctx.posPath, ctx.sidecar());
      rmSync(primarySidecarPath(path), { force: true });
      fsyncDir(dirname(ctx.replicaPath));
      ctx.emit({
        type: 'bootstrap',
        from: 'adopted',
        txid: ctx.pos.txid,
        reason: `no replicated history to prove it against (the ${tip.source === 'none' ? 'stream holds nothing' : 'stream was emptied'} and there is no snapshot): kept as this node's copy, unproven`,
      });
      return;
    }
  }
  if (found) {
    ctx.removeReplicaFiles();
    renameSync(path, ctx.replicaPath);
    ctx.pos = found;
    writePosition(ctx.posPath, ctx.sidecar());
    rmSync(primarySidecarPath(path), { force: true });
    fsyncDir(dirname(ctx.replicaPath));
    ctx.emit({ type: 'bootstrap', from: 'adopted', txid: found.txid });
    return;
  }
  const saved = `${path}.unreplicated-${ctx.o.clock.wallNow()}`;
  // The copy is kept whole: its WAL goes with it when a process still holding the file kept the close
  // above from checkpointing it.
  renameSync(path, saved);
  for (const ext of ['-wal', '-shm'])
    if (existsSync(`${path}${ext}`)) renameSync(`${path}${ext}`, `${saved}${ext}`);
  rmSync(primarySidecarPath(path), { force: true });
  const error = new UnreplicatedWritesError(path, saved, formatChecksum(local.checksum), sidecar?.txid ?? 0);
  ctx.o.logger.error('unreplicated writes detected', { err: error.message });
  ctx.emit({ type: 'unreplicated-writes', error });
}

/** Scans the stream headers from `fromSeq` for a complete transaction whose after-state is `checksum`. */
export async function findState(
  ctx: ReplicaContext,
  checksum: bigint,
  pages: number,
  fromSeq: number,
): Promise<WalPosition | undefined> {
  const info = await ctx.jsm.streams.info(ctx.names.stream);
  const last = info.state.last_seq;
  if (last === 0) return checksum === 0n ? { ...ctx.pos } : undefined;
  const start = Math.max(info.state.first_seq, fromSeq || info.state.first_seq);
  // The stream may have been trimmed past this state (it is kept only above the oldest snapshot):
  // then a snapshot at exactly this state proves it was replicated.
  if (info.state.messages === 0 || start > last) return findSnapshotState(ctx, checksum, pages);
  const consumer = await ctx.js.consumers.get(ctx.names.stream, {
    filter_subjects: ctx.names.subject,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: start,
    headers_only: true,
  });
  let found: WalPosition | undefined;
  const iter = await consumer.consume({ max_messages: 1000 });
  try {
    for await (const m of iter) {
      const h = m.headers;
      const c = /^(\d+)\/(\d+)$/.exec(h?.get(WalHeader.Chunk) ?? '');
      if (
        c &&
        Number(c[1]) === Number(c[2]) - 1 &&
        parseChecksum(h?.get(WalHeader.After)) === checksum &&
        Number(h?.get(WalHeader.DbPages)) === pages
      ) {
        found = {
          txid: Number(h!.get(WalHeader.Txid)),
          seq: m.seq,
          epoch: Number(h!.get(WalHeader.Epoch)),
          checksum: formatChecksum(checksum),
          pageSizeBytes: Number(h!.get(WalHeader.PageSize)),
          dbPages: pages,
        };
      }
      if (m.seq >= last) break;
    }
  } finally {
    iter.stop();
    dropConsumer(consumer);
  }
  return found ?? findSnapshotState(ctx, checksum, pages);
}

/** A stored snapshot whose state is exactly `checksum` / `pages`, as a position; undefined when none. */
export async function findSnapshotState(
  ctx: ReplicaContext,
  checksum: bigint,
  pages: number,
): Promise<WalPosition | undefined> {
  const list = ctx.o.snapshots ? await ctx.o.snapshots.list() : [];
  const snap = list.reverse().find((x) => parseChecksum(x.checksum) === checksum && x.pageCount === pages);
  return snap
    ? {
        txid: snap.txid,
        seq: snap.seq,
        epoch: snap.epoch,
        checksum: snap.checksum,
        pageSizeBytes: snap.pageSizeBytes,
        dbPages: pages,
      }
    : undefined;
}

/**
 * Loads the replica's own copy when it holds its recorded position's state, or the state of a transaction
 * after it once the transactions a crash interrupted are redone from the stream (redo.ts); else bootstraps.
 */
export async function loadOrBootstrap(parts: ReplicaParts): Promise<void> {
  const { ctx } = parts;
  const pos = readPosition(ctx.posPath, ctx.names.platform, ctx.names.app);
  // Earlier versions kept an apply journal beside the copy; the stream now redoes what it held.
  rmSync(ctx.journalPath, { force: true });
  if (!pos || !existsSync(ctx.replicaPath)) {
    await bootstrap(parts, pos ? 'replica file missing' : 'no replica yet');
    return;
  }
  ctx.pos = pos;
  ctx.streamCreated = pos.streamCreated;
  let file: PageHashes;
  try {
    // The whole file: a crash may have left it longer than the position's state.
    file = hashFile(ctx.replicaPath, { pageSizeBytes: ctx.pos.pageSizeBytes || undefined });
  } catch (err) {
    await bootstrap(parts, `the replica file cannot be read as a database: ${(err as Error).message}`);
    return;
  }
  const atPosition = file.clone();
  atPosition.resize(ctx.pos.dbPages);
  if (formatChecksum(atPosition.checksum) === ctx.pos.checksum) return loaded(ctx, atPosition);
  const recorded = ctx.pos.txid;
  const redo = await redoFromStream(ctx, file).catch((err: unknown): RedoResult => ({
    done: false,
    reason: (err as Error).message,
  }));
  if (redo.done) {
    ctx.pos = redo.position;
    writePosition(ctx.posPath, ctx.sidecar());
    ctx.o.logger.info('replica redid transactions after its recorded position from the stream', {
      from: recorded,
      txid: ctx.pos.txid,
      transactions: redo.transactions,
    });
    return loaded(
      ctx,
      redo.hashes,
      `redid ${redo.transactions} transactions after txid ${recorded} from the stream (a crash interrupted them)`,
    );
  }
  const err = new DivergedError(
    `replica ${ctx.replicaPath} at txid ${pos.txid} (${redo.reason})`,
    formatChecksum(atPosition.checksum),
    pos.checksum,
  );
  ctx.emit({ type: 'refused', error: err });
  await bootstrap(parts, err.message);
}

/** The replica's own copy holds `ctx.pos`'s state, whose page hashes are `hashes`. */
function loaded(ctx: ReplicaContext, hashes: PageHashes, reason?: string): void {
  ctx.hashes = hashes;
  ctx.fence = createFence();
  ctx.fence.check(Math.max(1, ctx.pos.epoch), 'replica start');
  ctx.bootstraps++;
  ctx.emit({ type: 'bootstrap', from: 'local', txid: ctx.pos.txid, ...(reason ? { reason } : {}) });
}
