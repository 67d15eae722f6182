import { fstatSync, readSync } from 'node:fs';
import {
  PageHashes,
  formatChecksum,
  headerPageSize,
  lockPageNumber,
  pageHash,
  readBlockPages,
  type SqliteDatabase,
} from '@gc/sqlite';
import type { PrimaryOptions } from '../types.js';
import { WalReader, readWal, type WalCursor, type WalReadResult, type WalTransaction } from '../walfile.js';
import { TxKind } from '../wire.js';
import type { PrimaryContext } from './context.js';
import type { Outbox } from './outbox.js';

/** Longest a capture pin is kept before it is handed over (see Capture.captureRound). */
const PIN_MAX_AGE_MS = 50;

/** Commits captured in one round and published as one message. */
interface CaptureGroup {
  pages: Map<number, Buffer>;
  dbPages: number;
  count: number;
  bytes: number;
}

/** At most this many commits in one message. */
const MAX_GROUP_COMMITS = 10_000;

function readFilePage(fd: number, pgno: number, pageSize: number, fileSize: number): Buffer {
  const b = Buffer.alloc(pageSize);
  const off = (pgno - 1) * pageSize;
  if (off < fileSize) readSync(fd, b, 0, pageSize, off);
  return b;
}

/** Logical size of the database file in pages: header field when valid, else file length. */
function dbFilePages(fd: number, pageSize: number): number {
  const size = fstatSync(fd).size;
  if (size < 100) return 0;
  const h = Buffer.alloc(100);
  readSync(fd, h, 0, 100, 0);
  const inHeader = h.readUInt32BE(28);
  if (inHeader > 0 && h.readUInt32BE(24) === h.readUInt32BE(92)) return inHeader;
  return Math.floor(size / pageSize);
}

/**
 * The capture of commits from the WAL into the captured state (`PrimaryContext.hashes`) and the outbox:
 * the read pins, WAL reading in rounds, grouping of commits, and the checks of each new WAL generation.
 */
export class Capture {
  readonly #ctx: PrimaryContext;
  readonly #o: PrimaryOptions;
  readonly #outbox: Outbox;
  readonly pins: [SqliteDatabase, SqliteDatabase];
  readonly #walPath: string;
  readonly wal: WalReader;
  /** Read-only descriptor of the database file, closed only after every SQLite connection (see readState). */
  readonly dbFd: number;
  cursor: WalCursor | undefined;
  /** Frames in the WAL's current generation (a checkpoint is due past `checkpointFrames`). */
  framesInGeneration = 0;
  #pinIndex = -1;
  pinOpenedAt = 0;
  #framesSincePin = 0;
  /** File change counter of page 1 as captured (SQLite bumps it in every frame of page 1 it writes). */
  changeCounter = 0;

  constructor(ctx: PrimaryContext, outbox: Outbox, pins: [SqliteDatabase, SqliteDatabase], dbFd: number) {
    this.#ctx = ctx;
    this.#o = ctx.o;
    this.#outbox = outbox;
    this.pins = pins;
    this.dbFd = dbFd;
    this.#walPath = `${ctx.o.path}-wal`;
    this.wal = new WalReader(this.#walPath);
  }

  // ---- pins: a read transaction always held, handed over (open next, capture, close previous) ----

  openPin(): void {
    const next = (this.#pinIndex + 1) % 2;
    const db = this.pins[next]!;
    db.exec('BEGIN');
    let stmt = this.#pinStatements.get(db);
    if (!stmt) {
      stmt = db.prepare<[]>('SELECT count(*) FROM sqlite_master');
      this.#pinStatements.set(db, stmt);
    }
    stmt.get();
    const prev = this.#pinIndex;
    this.#pinIndex = next;
    this.#pendingRelease = prev;
  }
  #pendingRelease = -1;
  readonly #pinStatements = new Map<SqliteDatabase, { get(): unknown }>();

  releasePrevPin(): void {
    if (this.#pendingRelease >= 0) {
      const db = this.pins[this.#pendingRelease]!;
      if (db.inTransaction) db.exec('COMMIT');
      this.#pendingRelease = -1;
    }
  }

  releaseAllPins(): void {
    for (const db of this.pins) if (db.open && db.inTransaction) db.exec('COMMIT');
    this.#pendingRelease = -1;
    this.#pinIndex = -1;
  }

  /** Reads the full current state (DB file overlaid with committed WAL frames) under a pin. */
  readState(wal?: WalReadResult): {
    hashes: PageHashes;
    pageSize: number;
    dbPages: number;
    txs: WalTransaction[];
    cursor: WalCursor | undefined;
    page: (p: number) => Buffer;
  } {
    const r = wal ?? readWal(this.#walPath, undefined);
    // The descriptor stays open for the primary's life: closing any descriptor of the database file drops
    // every POSIX lock this process holds on it — our pins' SHARED locks included — and another process
    // would then see no reader (its last-connection close would checkpoint and delete the WAL).
    const fd = this.dbFd;
    {
      const fileSize = fstatSync(fd).size;
      let pageSize = r.header?.pageSizeBytes ?? 0;
      if (!pageSize && fileSize >= 100) {
        const h = Buffer.alloc(100);
        readSync(fd, h, 0, 100, 0);
        pageSize = headerPageSize(h, this.#o.path);
      }
      const overlay = new Map<number, Buffer>();
      let dbPages = pageSize ? dbFilePages(fd, pageSize) : 0;
      for (const tx of r.transactions) {
        for (const [p, b] of tx.pages) overlay.set(p, b);
        dbPages = tx.dbSizePages;
      }
      const hashes = new PageHashes();
      const lock = pageSize ? lockPageNumber(pageSize) : 0;
      const block = Buffer.alloc(pageSize ? readBlockPages(dbPages, pageSize) * pageSize : 0);
      const per = pageSize ? block.length / pageSize : 0;
      for (let first = 1; first <= dbPages; first += per) {
        const n = Math.min(per, dbPages - first + 1);
        const got = readSync(fd, block, 0, n * pageSize, (first - 1) * pageSize);
        if (got < n * pageSize) block.fill(0, got, n * pageSize);
        for (let i = 0; i < n; i++) {
          const p = first + i;
          if (p === lock) continue;
          const page = overlay.get(p) ?? block.subarray(i * pageSize, (i + 1) * pageSize);
          hashes.set(p, pageHash(p, page, pageSize));
        }
      }
      hashes.resize(dbPages);
      return {
        hashes,
        pageSize,
        dbPages,
        txs: r.transactions,
        cursor: r.cursor,
        page: (p: number) => overlay.get(p) ?? readFilePage(fd, p, pageSize, fstatSync(fd).size),
      };
    }
  }

  queueFull(page: (p: number) => Buffer, reason: string, before: bigint): void {
    const lock = lockPageNumber(this.#ctx.pageSize || 4096);
    const pages: Array<[number, Buffer]> = [];
    const check = new PageHashes();
    for (let p = 1; p <= this.#ctx.hashes.pageCount; p++) {
      if (p === lock) continue;
      const b = page(p);
      pages.push([p, b]);
      check.set(p, pageHash(p, b, this.#ctx.pageSize));
    }
    check.resize(this.#ctx.hashes.pageCount);
    // A full message must be self-consistent (its pages hash to its `after`): replicas refuse it otherwise.
    if (check.checksum !== this.#ctx.hashes.checksum) {
      throw new Error(
        `wal full resync: the pages read give checksum ${formatChecksum(check.checksum)}, the state read gave ${formatChecksum(this.#ctx.hashes.checksum)} (the file changed under the pin); nothing was published, retrying`,
      );
    }
    const txid = this.#outbox.queueTx(TxKind.Full, pages, before, this.#ctx.hashes.checksum);
    this.#o.logger.warn('wal full resync', { txid, reason });
    this.#ctx.emit({ type: 'resync', txid, reason });
  }

  /**
   * Queues the commits of one group as one message: the last version of each page they wrote, the size
   * after the last. Equal to applying them one by one because sizes never shrink inside a group.
   */
  #applyGroup(g: CaptureGroup): void {
    const before = this.#ctx.hashes.checksum;
    const page1 = g.pages.get(1);
    if (page1) this.changeCounter = page1.readUInt32BE(24);
    const pages = [...g.pages];
    for (const [p, b] of pages) this.#ctx.hashes.set(p, pageHash(p, b, this.#ctx.pageSize));
    this.#ctx.hashes.resize(g.dbPages);
    this.#outbox.queueTx(TxKind.Tx, pages, before, this.#ctx.hashes.checksum, g.count);
  }

  /**
   * One capture round: read the WAL to its end under a pin. The pin is handed over (open the next, read,
   * close the previous) when `handover` is set or the current one is old — 50 ms, or a quarter of
   * `checkpointFrames` behind — so that checkpoints (ours and other programs') can move on; in between,
   * the pin held keeps the frames read beyond its mark from being overwritten (no WAL restart while it is
   * open), and a round costs no pin transactions.
   */
  captureRound(handover = false, ungrouped = false): void {
    const now = this.#o.clock.now();
    const renew =
      handover ||
      this.#pinIndex < 0 ||
      now - this.pinOpenedAt >= PIN_MAX_AGE_MS ||
      this.#framesSincePin * 4 >= this.#o.checkpointFrames;
    if (renew) this.openPin();
    try {
      this.readNew(ungrouped);
    } finally {
      if (renew) {
        this.releasePrevPin();
        this.pinOpenedAt = now;
        this.#framesSincePin = 0;
      }
    }
  }

  readNew(ungrouped = false): void {
    const r = this.wal.read(this.cursor);
    if (r.header && r.newGeneration && this.cursor) {
      const d1 = (r.header.salt1 - this.cursor.salt1) >>> 0;
      this.#ctx.emit({ type: 'wal-restart', salt1: r.header.salt1, checkpointSeq: r.header.checkpointSeq });
      // Each restart adds 1 to salt-1 (the checkpoint sequence is kept per connection, so another process
      // may write any value there). A larger step means generations went by unread: under the pin they can
      // only have been empty (unread frames cannot be backfilled, and a restart needs a full backfill), but
      // that is checked, not assumed — the file's state must be the captured one plus this generation.
      if (d1 !== 1 || r.header.pageSizeBytes !== this.#ctx.pageSize) {
        const state = this.readState(r);
        const expected =
          this.#ctx.pageSize === r.header.pageSizeBytes ? this.#afterTransactions(r.transactions) : undefined;
        if (
          !expected ||
          expected.checksum !== state.hashes.checksum ||
          expected.pageCount !== state.hashes.pageCount
        ) {
          const before = this.#ctx.hashes.checksum;
          const reason = `WAL salt-1 went from ${(r.header.salt1 - d1) >>> 0} to ${r.header.salt1}${
            r.header.pageSizeBytes !== this.#ctx.pageSize ? ' with a new page size' : ''
          } and the file is not the captured state plus the new generation`;
          this.#ctx.hashes = state.hashes;
          this.#ctx.pageSize = state.pageSize;
          this.cursor = state.cursor;
          this.changeCounter = state.hashes.pageCount ? state.page(1).readUInt32BE(24) : 0;
          this.queueFull(state.page, reason, before);
          this.framesInGeneration = 0;
          return;
        }
      }
      this.framesInGeneration = 0;
    }
    if (r.header && !this.#ctx.pageSize) this.#ctx.pageSize = r.header.pageSizeBytes;
    // Commits read in one round go out together, up to one message's worth of pages: when the app commits
    // faster than messages can be published, consecutive commits mostly rewrite the same pages. A commit
    // that shrinks the database starts a new group (so that a group never needs a truncation inside it).
    let g: CaptureGroup | undefined;
    const record = 4 + this.#ctx.pageSize;
    for (const tx of r.transactions) {
      if (
        g &&
        (ungrouped ||
          tx.dbSizePages < g.dbPages ||
          g.bytes >= this.#ctx.maxChunk ||
          g.count >= MAX_GROUP_COMMITS)
      ) {
        this.#applyGroup(g);
        g = undefined;
      }
      g ??= { pages: new Map(), dbPages: 0, count: 0, bytes: 0 };
      for (const [p, b] of tx.pages) {
        if (p > tx.dbSizePages) continue;
        if (!g.pages.has(p)) g.bytes += record;
        g.pages.set(p, b);
      }
      g.dbPages = tx.dbSizePages;
      g.count++;
      this.framesInGeneration += tx.frames;
      this.#framesSincePin += tx.frames;
    }
    if (g) this.#applyGroup(g);
    if (r.cursor) this.cursor = r.cursor;
  }

  /** The page hashes the captured state would have after `txs` (the captured state itself is unchanged). */
  #afterTransactions(txs: WalTransaction[]): PageHashes {
    const h = new PageHashes();
    for (let p = 1; p <= this.#ctx.hashes.pageCount; p++) h.set(p, this.#ctx.hashes.get(p));
    h.resize(this.#ctx.hashes.pageCount);
    const lock = lockPageNumber(this.#ctx.pageSize);
    for (const tx of txs) {
      for (const [p, b] of tx.pages)
        if (p <= tx.dbSizePages && p !== lock) h.set(p, pageHash(p, b, this.#ctx.pageSize));
      h.resize(tx.dbSizePages);
    }
    return h;
  }
}
