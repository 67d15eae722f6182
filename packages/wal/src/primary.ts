import { emitAll } from './listeners.js';
import { closeSync, existsSync, fstatSync, openSync, readSync, writeFileSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { type JetStreamManager } from '@nats-io/jetstream';
import { ClosedError, TimeoutError, realClock, silentLogger, withTimeout, type Clock } from '@gc/core';
import { openSnapshotStore, type SnapshotSource } from '@gc/snapshot';
import {
  NotWalModeError,
  PageHashes,
  formatChecksum,
  headerPageSize,
  lockPageNumber,
  openDatabase,
  pageHash,
  type SqliteDatabase,
} from '@gc/sqlite';
import { NotAtTipError, NotLeaderError } from './errors.js';
import { StreamPublisher } from './publisher.js';
import { primarySidecarPath, readPosition, writePosition, type WalPosition } from './position.js';
import { ensureWalStream, historyTip, walNames, type HistoryTip, type WalNames } from './stream.js';
import { WalReader, readWal, type WalCursor, type WalReadResult, type WalTransaction } from './walfile.js';
import type { Primary, PrimaryEvent, PrimaryOptions, PrimaryPosition, PrimaryStopResult } from './types.js';
import { createWorkerPrimary } from './worker/facade.js';
import { TxKind, encodeBody, encodeTx, type TxKindValue, type TxMeta, type WireChunk } from './wire.js';

/** `stop()` compares the whole file with the captured state for databases up to this size. */
const STOP_VERIFY_MAX_BYTES = 256 << 20;

/** Longest a capture pin is kept before it is handed over (see #captureRound). */
const PIN_MAX_AGE_MS = 50;

/** Defaults of {@link PrimaryOptions} (platform, app, path and epoch have none). */
export function defaultPrimaryOptions(): Omit<PrimaryOptions, 'platform' | 'app' | 'path' | 'epoch'> {
  return {
    create: true,
    pollIntervalMs: 10,
    checkpointFrames: 1000,
    synchronous: false,
    publishWindow: 64,
    publishTimeoutMs: 5000,
    syncTimeoutMs: 30_000,
    busyTimeoutMs: 5000,
    checkpointLockTimeoutMs: 50,
    streamReplicas: 1,
    maxChunkBytes: 0,
    snapshotTip: true,
    unprovenState: 'refuse',
    minTxid: 0,
    verifyIntervalMs: 300_000,
    clock: realClock,
    logger: silentLogger,
    onEvent: undefined,
    worker: undefined,
  };
}

interface Outgoing {
  txid: number;
  chunk: WireChunk;
  msgId: string;
  meta: TxMeta;
}

/** Commits captured in one round and published as one message. */
interface CaptureGroup {
  pages: Map<number, Buffer>;
  dbPages: number;
  count: number;
  bytes: number;
}

/** At most this many commits in one message. */
const MAX_GROUP_COMMITS = 10_000;

interface HistoryEntry {
  txid: number;
  epoch: number;
  after: bigint;
  dbPages: number;
  seq: number;
}

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

class PrimaryImpl implements Primary {
  readonly db: SqliteDatabase;
  readonly #o: PrimaryOptions;
  readonly #names: WalNames;
  readonly #publisher: StreamPublisher;
  readonly #jsm: JetStreamManager;
  readonly #nc: NatsConnection;
  readonly #pins: [SqliteDatabase, SqliteDatabase];
  readonly #ckpt: SqliteDatabase;
  readonly #walPath: string;
  readonly #wal: WalReader;
  readonly #listeners = new Set<(e: PrimaryEvent) => void>();
  #pinIndex = -1;
  #cursor: WalCursor | undefined;
  #framesInGeneration = 0;
  #hashes = new PageHashes();
  #pageSize = 0;
  #capturedTxid = 0;
  #acked: WalPosition = {
    txid: 0,
    seq: 0,
    epoch: 0,
    checksum: formatChecksum(0n),
    pageSizeBytes: 0,
    dbPages: 0,
  };
  #lastSeq = 0;
  #queue: Outgoing[] = [];
  #history: HistoryEntry[] = [];
  #ackWaiters: Array<{ txid: number; resolve: () => void; reject: (e: Error) => void }> = [];
  #tickTimer: ReturnType<Clock['setTimeout']> | undefined;
  #tickRunning: Promise<void> | undefined;
  #tickAgain = false;
  #pumping = false;
  #stopped = false;
  #deposed: NotLeaderError | undefined;
  #maxChunk: number;
  #sidecarWrittenAt = 0;
  readonly #borrowWriteLock: BorrowWriteLock | undefined;
  /** Read-only descriptor of the database file, closed only after every SQLite connection (see #readState). */
  readonly #dbFd: number;

  constructor(
    o: PrimaryOptions,
    names: WalNames,
    publisher: StreamPublisher,
    jsm: JetStreamManager,
    db: SqliteDatabase,
    pins: [SqliteDatabase, SqliteDatabase],
    ckpt: SqliteDatabase,
    maxChunk: number,
    borrowWriteLock: BorrowWriteLock | undefined,
    dbFd: number,
    nc: NatsConnection,
  ) {
    this.#nc = nc;
    this.#o = o;
    this.#dbFd = dbFd;
    this.#borrowWriteLock = borrowWriteLock;
    this.#names = names;
    this.#publisher = publisher;
    this.#jsm = jsm;
    this.db = db;
    this.#pins = pins;
    this.#ckpt = ckpt;
    this.#walPath = `${o.path}-wal`;
    this.#wal = new WalReader(this.#walPath);
    this.#maxChunk = maxChunk;
  }

  #emit(e: PrimaryEvent): void {
    emitAll(this.#listeners, e, this.#o.logger, 'primary');
  }

  onEvent(listener: (e: PrimaryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---- pins: a read transaction always held, handed over (open next, capture, close previous) ----

  #openPin(): void {
    const next = (this.#pinIndex + 1) % 2;
    const db = this.#pins[next]!;
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

  /** History entry of `txid` (entries are in txid order; a group has one, at its last txid). */
  #historyEntry(txid: number): HistoryEntry | undefined {
    let lo = 0;
    let hi = this.#history.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.#history[mid]!;
      if (e.txid === txid) return e;
      if (e.txid < txid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  #releasePrevPin(): void {
    if (this.#pendingRelease >= 0) {
      const db = this.#pins[this.#pendingRelease]!;
      if (db.inTransaction) db.exec('COMMIT');
      this.#pendingRelease = -1;
    }
  }

  #releaseAllPins(): void {
    for (const db of this.#pins) if (db.open && db.inTransaction) db.exec('COMMIT');
    this.#pendingRelease = -1;
    this.#pinIndex = -1;
  }

  // ---- startup ----

  /** Reads the full current state (DB file overlaid with committed WAL frames) under a pin. */
  #readState(wal?: WalReadResult): {
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
    const fd = this.#dbFd;
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
      const block = Buffer.alloc(pageSize ? Math.max(1, Math.floor((4 << 20) / pageSize)) * pageSize : 0);
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

  async start(): Promise<void> {
    this.#openPin();
    this.#releasePrevPin();
    const state = this.#readState();
    this.#hashes = state.hashes;
    this.#pageSize = state.pageSize;
    this.#cursor = state.cursor;
    this.#framesInGeneration = state.txs.reduce((n, t) => n + t.frames, 0);
    this.#changeCounter = state.hashes.pageCount ? state.page(1).readUInt32BE(24) : 0;
    this.#verifiedAt = this.#o.clock.now();
    const snapshots = this.#o.snapshotTip
      ? await openSnapshotStore(this.#nc, { platform: this.#names.platform, app: this.#names.app })
      : undefined;
    const tip = await historyTip(this.#jsm, this.#names, snapshots);
    const stream = tip.stream;
    this.#lastSeq = stream.seq;
    const highest = Math.max(stream.epoch, stream.lastEpoch, tip.epoch);
    if (highest > this.#o.epoch) {
      throw new NotLeaderError(this.#o.epoch, `the stream already holds epoch ${highest}`);
    }
    const local = this.#hashes.checksum;
    const atTip =
      tip.source !== 'none' &&
      tip.source !== 'lost' &&
      local === tip.checksum &&
      this.#hashes.pageCount === tip.dbPages;
    const decision = this.#continuity(tip, local, atTip);
    // Txids count on from the tip (or from `minTxid`): a new primary never starts the history again at 1. A
    // stream purged by hand loses the txids after the newest snapshot: this node's own record of what it
    // published in the same state keeps them from being used twice.
    const own = readPosition(primarySidecarPath(this.#o.path), this.#names.platform, this.#names.app);
    const ownTxid = own && own.checksum === formatChecksum(local) && tip.source === 'snapshot' ? own.txid : 0;
    const base = Math.max(tip.txid, ownTxid, decision.publish === 'full' ? this.#o.minTxid : 0);
    this.#capturedTxid = base;
    this.#acked = {
      txid: tip.txid,
      seq: tip.source === 'stream' ? tip.seq : 0,
      epoch: tip.epoch,
      checksum: formatChecksum(tip.checksum),
      pageSizeBytes: this.#pageSize,
      dbPages: this.#hashes.pageCount,
    };
    this.#history.push({
      txid: tip.txid,
      epoch: tip.epoch,
      after: tip.checksum,
      dbPages: tip.dbPages,
      seq: tip.source === 'stream' ? tip.seq : 0,
    });
    if (decision.publish === 'full') this.#queueFull(state.page, decision.reason, tip.checksum);
    else if (tip.epoch < this.#o.epoch || tip.source === 'snapshot') {
      // The new epoch's marker fences the previous leader; on a stream that holds no transaction it also
      // puts the tip (txid, checksum) back into the stream.
      this.#queueTx(TxKind.Epoch, [], local, local);
    }
    this.#writeSidecar(true);
    this.#pump();
    this.#schedule(0);
    // Fence before reporting ready: until the new epoch's first message is in the stream, a deposed primary
    // could still append, and its writes would then be the ones replicas keep.
    if (this.#queue.length) await this.sync();
  }

  /**
   * Decides whether the local database may be published: it must be at the history's tip (same checksum
   * and size), or a fresh history, or provably the tip plus commits made here while no replicator ran (this
   * node's sidecar records that it published exactly the tip). Anything else would overwrite committed
   * history: refused with {@link NotAtTipError}, unless `unprovenState: 'publish'` (an operator's decision).
   */
  #continuity(tip: HistoryTip, local: bigint, atTip: boolean): { publish: 'none' | 'full'; reason: string } {
    const path = this.#o.path;
    const localDesc = { txid: 0, checksum: formatChecksum(local) };
    const tipDesc = {
      txid: tip.txid,
      checksum: tip.source === 'none' || tip.source === 'lost' ? '' : formatChecksum(tip.checksum),
    };
    if (atTip) return { publish: 'none', reason: 'at the tip' };
    const sidecar = readPosition(primarySidecarPath(path), this.#names.platform, this.#names.app);
    if (tip.source === 'none') {
      if (!sidecar || sidecar.txid === 0 || this.#o.unprovenState === 'publish')
        return { publish: 'full', reason: 'a new history: publishing the whole database' };
      throw new NotAtTipError(
        'history-lost',
        path,
        tipDesc,
        { ...localDesc, txid: sidecar.txid },
        `this node published up to txid ${sidecar.txid}, but the WAL stream holds nothing and there is no snapshot`,
      );
    }
    if (this.#o.unprovenState === 'publish') {
      return {
        publish: 'full',
        reason: `published deliberately (unprovenState: publish): local checksum ${formatChecksum(local)} is not the tip's ${tipDesc.checksum || '(history lost)'} at txid ${tip.txid}`,
      };
    }
    if (tip.source === 'lost')
      throw new NotAtTipError(
        'history-lost',
        path,
        tipDesc,
        localDesc,
        'the WAL stream was trimmed or purged to nothing and there is no snapshot',
      );
    // Every transaction of an epoch was captured from the file of the one node that held it: if that is this
    // node's last primary on this file, the tip is a state of this file and the file moved on from it
    // (commits made while no replicator ran, such as another process writing while gc restarted).
    if (sidecar && sidecar.leaderEpoch !== undefined && sidecar.leaderEpoch === tip.epoch && tip.epoch > 0) {
      return {
        publish: 'full',
        reason: `commits made here while no replicator ran: this node's primary (epoch ${tip.epoch}) published the tip (txid ${tip.txid}) from this file, which moved on from it (checksum ${formatChecksum(local)})`,
      };
    }
    throw new NotAtTipError(
      'diverged',
      path,
      tipDesc,
      { ...localDesc, txid: sidecar?.txid ?? 0 },
      `local state (${this.#hashes.pageCount} pages) differs from the tip (${tip.dbPages} pages, from the ${tip.source})`,
    );
  }

  // ---- capture ----

  #queueFull(page: (p: number) => Buffer, reason: string, before: bigint): void {
    const lock = lockPageNumber(this.#pageSize || 4096);
    const pages: Array<[number, Buffer]> = [];
    const check = new PageHashes();
    for (let p = 1; p <= this.#hashes.pageCount; p++) {
      if (p === lock) continue;
      const b = page(p);
      pages.push([p, b]);
      check.set(p, pageHash(p, b, this.#pageSize));
    }
    check.resize(this.#hashes.pageCount);
    // A full message must be self-consistent (its pages hash to its `after`): replicas refuse it otherwise.
    if (check.checksum !== this.#hashes.checksum) {
      throw new Error(
        `wal full resync: the pages read give checksum ${formatChecksum(check.checksum)}, the state read gave ${formatChecksum(this.#hashes.checksum)} (the file changed under the pin); nothing was published, retrying`,
      );
    }
    const txid = this.#queueTx(TxKind.Full, pages, before, this.#hashes.checksum);
    this.#o.logger.warn('wal full resync', { txid, reason });
    this.#emit({ type: 'resync', txid, reason });
  }

  #queueTx(
    kind: TxKindValue,
    pages: Array<[number, Buffer]>,
    before: bigint,
    after: bigint,
    txs = 1,
  ): number {
    const txid = (this.#capturedTxid += txs);
    const meta: TxMeta = {
      epoch: this.#o.epoch,
      txid,
      txs,
      kind,
      pageSizeBytes: this.#pageSize,
      dbPages: this.#hashes.pageCount,
      pages: pages.length,
      before,
      after,
      commitTimeMs: this.#o.clock.wallNow(),
    };
    const body = encodeBody(pages, this.#pageSize, pages.length);
    for (const chunk of encodeTx(meta, body, this.#maxChunk)) {
      const msgId = `${this.#names.stream}:${meta.epoch}:${txid}:${chunk.index}`;
      chunk.headers.append('Nats-Msg-Id', msgId);
      this.#queue.push({ txid, chunk, meta, msgId });
    }
    this.#history.push({ txid, epoch: meta.epoch, after, dbPages: meta.dbPages, seq: 0 });
    if (this.#history.length > 20_000) this.#history.splice(0, 10_000);
    return txid;
  }

  /**
   * Queues the commits of one group as one message: the last version of each page they wrote, the size
   * after the last. Equal to applying them one by one because sizes never shrink inside a group.
   */
  #applyGroup(g: CaptureGroup): void {
    const before = this.#hashes.checksum;
    const page1 = g.pages.get(1);
    if (page1) this.#changeCounter = page1.readUInt32BE(24);
    const pages = [...g.pages];
    for (const [p, b] of pages) this.#hashes.set(p, pageHash(p, b, this.#pageSize));
    this.#hashes.resize(g.dbPages);
    this.#queueTx(TxKind.Tx, pages, before, this.#hashes.checksum, g.count);
  }

  /**
   * One capture round: read the WAL to its end under a pin. The pin is handed over (open the next, read,
   * close the previous) when `handover` is set or the current one is old — 50 ms, or a quarter of
   * `checkpointFrames` behind — so that checkpoints (ours and other programs') can move on; in between,
   * the pin held keeps the frames read beyond its mark from being overwritten (no WAL restart while it is
   * open), and a round costs no pin transactions.
   */
  #captureRound(handover = false, ungrouped = false): void {
    const now = this.#o.clock.now();
    const renew =
      handover ||
      this.#pinIndex < 0 ||
      now - this.#pinOpenedAt >= PIN_MAX_AGE_MS ||
      this.#framesSincePin * 4 >= this.#o.checkpointFrames;
    if (renew) this.#openPin();
    try {
      this.#readNew(ungrouped);
    } finally {
      if (renew) {
        this.#releasePrevPin();
        this.#pinOpenedAt = now;
        this.#framesSincePin = 0;
      }
    }
  }
  #pinOpenedAt = 0;
  #framesSincePin = 0;
  /** File change counter of page 1 as captured (SQLite bumps it in every frame of page 1 it writes). */
  #changeCounter = 0;
  /** Monotonic ms of the last full verification of the file against the captured state. */
  #verifiedAt = 0;
  #verifyWanted: string | undefined;

  /**
   * A cheap look at the database file's header each round: a commit that did not go through the WAL (a
   * connection in rollback-journal mode, the file replaced) bumps the change counter beyond the captured
   * one, or changes the page size or the WAL mode bytes. Then the whole file is verified.
   */
  #checkHeader(): void {
    if (!this.#pageSize) return;
    const h = Buffer.allocUnsafe(100);
    if (readSync(this.#dbFd, h, 0, 100, 0) < 100) return;
    const counter = h.readUInt32BE(24);
    const why =
      ((counter - this.#changeCounter) | 0) > 0
        ? `the file's change counter is ${counter}, the captured one ${this.#changeCounter}`
        : headerPageSize(h, this.#o.path) !== this.#pageSize
          ? 'the page size changed'
          : h[18] !== 2 || h[19] !== 2
            ? 'the database left WAL mode'
            : undefined;
    if (why) this.#verifyWanted ??= why;
  }

  /**
   * Compares the file's whole state (database file overlaid with the WAL's committed frames) with the
   * captured one, under the write lock so that nothing commits meanwhile. A difference means commits
   * escaped the WAL capture: the file is the truth of this primary's history (it has been publishing it),
   * so it is published in full (`resync`, with the reason) — nothing is lost, and `sync()` reports success
   * only once the stream holds it. False when the lock was not had in time (tried again later).
   */
  async #verifyFile(reason: string): Promise<boolean> {
    let mismatch: string | undefined;
    const done = await this.#underWriteLock(
      () => {
        this.#readNew();
        const state = this.#readState();
        if (
          state.hashes.checksum === this.#hashes.checksum &&
          state.hashes.pageCount === this.#hashes.pageCount
        )
          return;
        mismatch = `the database file holds changes that did not go through the WAL (${reason}): file checksum ${formatChecksum(state.hashes.checksum)} (${state.hashes.pageCount} pages), captured ${formatChecksum(this.#hashes.checksum)} (${this.#hashes.pageCount} pages)`;
        const before = this.#hashes.checksum;
        this.#hashes = state.hashes;
        this.#pageSize = state.pageSize;
        this.#cursor = state.cursor;
        this.#framesInGeneration = state.txs.reduce((n, t) => n + t.frames, 0);
        this.#changeCounter = state.page(1).readUInt32BE(24);
        this.#queueFull(state.page, mismatch, before);
      },
      Math.max(this.#o.checkpointLockTimeoutMs, 250),
    );
    if (done) {
      this.#verifiedAt = this.#o.clock.now();
      if (mismatch)
        this.#emit({ type: 'error', error: new Error(`wal capture missed commits: ${mismatch}`) });
    }
    return done;
  }

  #readNew(ungrouped = false): void {
    const r = this.#wal.read(this.#cursor);
    if (r.header && r.newGeneration && this.#cursor) {
      const d1 = (r.header.salt1 - this.#cursor.salt1) >>> 0;
      this.#emit({ type: 'wal-restart', salt1: r.header.salt1, checkpointSeq: r.header.checkpointSeq });
      // Each restart adds 1 to salt-1 (the checkpoint sequence is kept per connection, so another process
      // may write any value there). A larger step means generations went by unread: under the pin they can
      // only have been empty (unread frames cannot be backfilled, and a restart needs a full backfill), but
      // that is checked, not assumed — the file's state must be the captured one plus this generation.
      if (d1 !== 1 || r.header.pageSizeBytes !== this.#pageSize) {
        const state = this.#readState(r);
        const expected =
          this.#pageSize === r.header.pageSizeBytes ? this.#afterTransactions(r.transactions) : undefined;
        if (
          !expected ||
          expected.checksum !== state.hashes.checksum ||
          expected.pageCount !== state.hashes.pageCount
        ) {
          const before = this.#hashes.checksum;
          const reason = `WAL salt-1 went from ${(r.header.salt1 - d1) >>> 0} to ${r.header.salt1}${
            r.header.pageSizeBytes !== this.#pageSize ? ' with a new page size' : ''
          } and the file is not the captured state plus the new generation`;
          this.#hashes = state.hashes;
          this.#pageSize = state.pageSize;
          this.#cursor = state.cursor;
          this.#changeCounter = state.hashes.pageCount ? state.page(1).readUInt32BE(24) : 0;
          this.#queueFull(state.page, reason, before);
          this.#framesInGeneration = 0;
          return;
        }
      }
      this.#framesInGeneration = 0;
    }
    if (r.header && !this.#pageSize) this.#pageSize = r.header.pageSizeBytes;
    // Commits read in one round go out together, up to one message's worth of pages: when the app commits
    // faster than messages can be published, consecutive commits mostly rewrite the same pages. A commit
    // that shrinks the database starts a new group (so that a group never needs a truncation inside it).
    let g: CaptureGroup | undefined;
    const record = 4 + this.#pageSize;
    for (const tx of r.transactions) {
      if (
        g &&
        (ungrouped || tx.dbSizePages < g.dbPages || g.bytes >= this.#maxChunk || g.count >= MAX_GROUP_COMMITS)
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
      this.#framesInGeneration += tx.frames;
      this.#framesSincePin += tx.frames;
    }
    if (g) this.#applyGroup(g);
    if (r.cursor) this.#cursor = r.cursor;
  }

  /** The page hashes the captured state would have after `txs` (the captured state itself is unchanged). */
  #afterTransactions(txs: WalTransaction[]): PageHashes {
    const h = new PageHashes();
    for (let p = 1; p <= this.#hashes.pageCount; p++) h.set(p, this.#hashes.get(p));
    h.resize(this.#hashes.pageCount);
    const lock = lockPageNumber(this.#pageSize);
    for (const tx of txs) {
      for (const [p, b] of tx.pages)
        if (p <= tx.dbSizePages && p !== lock) h.set(p, pageHash(p, b, this.#pageSize));
      h.resize(tx.dbSizePages);
    }
    return h;
  }

  /**
   * Runs `step` while no connection can commit: with the write lock lent by the application's thread
   * (engine in a worker), else with the write lock taken on `#ckpt`. False when the lock was not had
   * within `timeoutMs`.
   */
  #underWriteLock(step: () => void, timeoutMs: number): Promise<boolean> {
    // One at a time: a second request must not wait for the lock synchronously while the first one's
    // loan is on its way (it would block the very event loop that has to receive it).
    const run = this.#lockChain.then(() => this.#underWriteLockNow(step, timeoutMs));
    this.#lockChain = run.catch(() => undefined);
    return run;
  }
  #lockChain: Promise<unknown> = Promise.resolve();

  async #underWriteLockNow(step: () => void, timeoutMs: number): Promise<boolean> {
    if (this.#borrowWriteLock && (await this.#borrowWriteLock(step, timeoutMs))) return true;
    const w = this.#ckpt;
    w.pragma(`busy_timeout = ${timeoutMs}`);
    try {
      w.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
      throw err;
    } finally {
      w.pragma(`busy_timeout = ${this.#o.busyTimeoutMs}`);
    }
    try {
      step();
    } finally {
      w.exec('ROLLBACK');
    }
    return true;
  }

  /** Checkpoint under the write lock so the next writer can restart the WAL with nothing uncaptured. */
  async #checkpoint(): Promise<void> {
    const started = this.#o.clock.now();
    const frames = this.#framesInGeneration;
    if (this.db.inTransaction) return;
    this.#captureRound(true); // a fresh pin, so that phase 1 can backfill up to here
    // Phase 1, writers not blocked: backfill what every reader (our pin included) has moved past — nearly
    // the whole WAL — with its copying and fsync. Phase 2 below then holds the write lock only for the
    // few frames committed since.
    this.db.pragma('wal_checkpoint(PASSIVE)');
    const done = await this.#underWriteLock(() => {
      this.#readNew();
      this.#releaseAllPins();
      // PASSIVE from another connection: nobody can commit while the write lock is held, and every
      // committed frame is captured, so backfilling everything loses nothing.
      this.db.pragma('wal_checkpoint(PASSIVE)');
      this.#openPin();
      this.#releasePrevPin();
      // That pin sees a fully backfilled WAL (SQLite gives it no read mark, so it does not hold the WAL):
      // replace it at the next round, once the app has written again.
      this.#pinOpenedAt = -Infinity;
    }, this.#o.checkpointLockTimeoutMs);
    if (done) {
      this.#emit({ type: 'checkpoint', framesBefore: frames, durationMs: this.#o.clock.now() - started });
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#tickTimer) return;
    this.#tickTimer = this.#o.clock.setTimeout(() => {
      this.#tickTimer = undefined;
      void this.#tick();
    }, delayMs);
  }

  /** Runs one capture round now (or after the one in progress). */
  #tick(): Promise<void> {
    if (this.#tickRunning) {
      this.#tickAgain = true;
      return this.#tickRunning;
    }
    this.#tickRunning = (async () => {
      do {
        this.#tickAgain = false;
        if (this.#stopped) break;
        try {
          this.#captureRound();
          this.#checkHeader();
          if (
            !this.#verifyWanted &&
            this.#o.verifyIntervalMs > 0 &&
            this.#o.clock.now() - this.#verifiedAt >= this.#o.verifyIntervalMs
          )
            this.#verifyWanted = 'periodic check';
          if (this.#verifyWanted && (await this.#verifyFile(this.#verifyWanted)))
            this.#verifyWanted = undefined;
          if (this.#checkpointWanted || this.#framesInGeneration >= this.#o.checkpointFrames) {
            this.#checkpointWanted = false;
            await this.#checkpoint();
          }
          this.#pump();
        } catch (err) {
          this.#o.logger.error('wal capture failed', { err: String(err) });
          this.#emit({ type: 'error', error: err as Error });
        }
        await Promise.resolve();
      } while (this.#tickAgain);
    })().finally(() => {
      this.#tickRunning = undefined;
      // A request that arrived after the loop's last check must not wait for the next poll.
      if (this.#tickAgain && !this.#stopped) void this.#tick();
      else this.#schedule(this.#o.pollIntervalMs);
    });
    return this.#tickRunning;
  }

  // ---- publishing ----

  #pump(): void {
    if (this.#pumping || this.#deposed) return;
    this.#pumping = true;
    void this.#pumpLoop().finally(() => {
      this.#pumping = false;
      if (this.#queue.length && !this.#deposed && !this.#closedHard) this.#pump();
    });
  }
  #closedHard = false;

  async #pumpLoop(): Promise<void> {
    let backoffMs = 50;
    while (this.#queue.length && !this.#deposed && !this.#closedHard) {
      const batch = this.#queue.slice(0, this.#o.publishWindow);
      const base = this.#lastSeq;
      const pending = batch.map((m, i) => {
        // Only the current leader appends: the stream refuses a message whose expected last sequence is
        // not its last one. The message id lets a retry after a lost ack be recognised (#reconcile).
        m.chunk.headers.set('Nats-Expected-Last-Sequence', String(base + i));
        return this.#publisher.publish(
          this.#names.subject,
          m.chunk.data,
          m.chunk.headers,
          this.#o.publishTimeoutMs,
        );
      });
      const results = await Promise.allSettled(pending);
      let ok = 0;
      for (const r of results) {
        if (r.status === 'fulfilled' && r.value.seq === base + ok + 1) ok++;
        else break;
      }
      this.#commitPublished(ok);
      if (ok === batch.length) {
        backoffMs = 50;
        continue;
      }
      const failure = results[ok]!;
      const cause =
        failure.status === 'rejected'
          ? (failure.reason as Error)
          : new Error(`ack at unexpected seq ${failure.value.seq}`);
      // Ambiguous: a timeout may have stored the message, a wrong-last-sequence may mean another leader.
      await this.#reconcile(cause, backoffMs);
      backoffMs = Math.min(2000, backoffMs * 2);
    }
  }

  #commitPublished(n: number): void {
    for (const m of this.#queue.splice(0, n)) {
      this.#lastSeq++;
      if (m.chunk.index === m.chunk.count - 1) {
        const h = this.#historyEntry(m.txid);
        if (h) h.seq = this.#lastSeq;
        this.#acked = {
          txid: m.txid,
          seq: this.#lastSeq,
          epoch: m.meta.epoch,
          checksum: formatChecksum(m.meta.after),
          pageSizeBytes: m.meta.pageSizeBytes,
          dbPages: m.meta.dbPages,
        };
        this.#emit({ type: 'published', txid: m.txid, seq: this.#lastSeq });
      }
    }
    if (n > 0) {
      this.#resolveWaiters();
      this.#writeSidecar(false);
    }
  }

  async #reconcile(cause: Error, backoffMs: number): Promise<void> {
    for (;;) {
      if (this.#closedHard) return;
      let tip;
      try {
        tip = await this.#jsm.streams.info(this.#names.stream).then(async (info) => {
          const seq = info.state.last_seq;
          const m = seq > 0 ? await this.#jsm.streams.getMessage(this.#names.stream, { seq }) : null;
          return { seq, msgId: m?.header.get('Nats-Msg-Id') ?? '' };
        });
      } catch {
        await this.#o.clock.sleep(backoffMs);
        continue;
      }
      if (tip.seq === this.#lastSeq) {
        await this.#o.clock.sleep(backoffMs);
        return;
      }
      const idx = this.#queue.findIndex((m) => m.msgId === tip.msgId);
      if (idx >= 0 && tip.seq === this.#lastSeq + idx + 1) {
        this.#commitPublished(idx + 1);
        return;
      }
      const error = new NotLeaderError(
        this.#o.epoch,
        `the stream's last sequence is ${tip.seq} (message ${tip.msgId || '?'}), this primary expected ${this.#lastSeq}`,
        { cause },
      );
      this.#deposed = error;
      this.#o.logger.warn('wal primary deposed', { err: error.message });
      this.#emit({ type: 'not-leader', error });
      this.#rejectWaiters(error);
      return;
    }
  }

  #resolveWaiters(): void {
    const acked = this.#acked.txid;
    this.#ackWaiters = this.#ackWaiters.filter((w) => {
      if (w.txid <= acked) w.resolve();
      return w.txid > acked;
    });
  }

  #rejectWaiters(err: Error): void {
    for (const w of this.#ackWaiters) w.reject(err);
    this.#ackWaiters = [];
  }

  #writeSidecar(force: boolean): void {
    const now = this.#o.clock.now();
    if (!force && now - this.#sidecarWrittenAt < 200) return;
    this.#sidecarWrittenAt = now;
    try {
      writePosition(
        primarySidecarPath(this.#o.path),
        {
          ...this.#acked,
          platform: this.#names.platform,
          app: this.#names.app,
          role: 'primary',
          updatedAtMs: this.#o.clock.wallNow(),
          leaderEpoch: this.#o.epoch,
        },
        false,
      );
    } catch (err) {
      this.#emit({ type: 'error', error: err as Error });
    }
  }

  // ---- public API ----

  async sync(timeoutMs = this.#o.syncTimeoutMs): Promise<WalPosition> {
    if (this.#deposed) throw this.#deposed;
    if (this.#stopped) throw new ClosedError('wal primary');
    await this.#tick();
    const deposed = this.#deposed as NotLeaderError | undefined;
    if (deposed) throw deposed;
    const target = this.#capturedTxid;
    if (this.#acked.txid < target) {
      await withTimeout(
        new Promise<void>((resolve, reject) => this.#ackWaiters.push({ txid: target, resolve, reject })),
        timeoutMs,
        `wal sync to txid ${target}`,
      );
    }
    return { ...this.#acked };
  }

  async write<T>(fn: (db: SqliteDatabase) => T): Promise<T> {
    if (this.#deposed) throw this.#deposed;
    if (this.#stopped) throw new ClosedError('wal primary');
    const result = this.db.transaction(fn)(this.db);
    if (this.#o.synchronous) await this.sync();
    else void this.#tick();
    return result;
  }

  captureNow(): void {
    if (!this.#stopped) void this.#tick();
  }

  async checkpoint(): Promise<void> {
    if (this.#stopped) throw new ClosedError('wal primary');
    this.#checkpointWanted = true;
    await this.#tick();
  }
  #checkpointWanted = false;

  position(): PrimaryPosition {
    return {
      ...this.#acked,
      leaderEpoch: this.#o.epoch,
      capturedTxid: this.#capturedTxid,
      capturedChecksum: formatChecksum(this.#hashes.checksum),
      queuedMessages: this.#queue.length,
    };
  }

  async snapshotTo(dir: string): Promise<SnapshotSource> {
    if (this.#stopped) throw new ClosedError('wal primary');
    await this.#tickRunning;
    const reader = openDatabase(this.#o.path, { fileMustExist: true });
    let bytes: Buffer;
    let fromTxid: number;
    try {
      reader.pragma(`busy_timeout = ${this.#o.busyTimeoutMs}`);
      reader.pragma('wal_autocheckpoint = 0');
      // No write lock (another process writing back to back would starve it): the reader's snapshot is some
      // commit at or after the last round's end. A round right after it, without grouping, gives every
      // commit up to the WAL's end its own history entry, so the snapshot is exactly one of them.
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM sqlite_master').get();
      fromTxid = this.#capturedTxid;
      this.#captureRound(false, true);
      this.#pump();
      bytes = reader.serialize();
      reader.exec('COMMIT');
    } finally {
      reader.close();
    }
    const pageSize = bytes.length >= 100 ? headerPageSize(bytes, this.#o.path) : this.#pageSize;
    const hashes = new PageHashes();
    for (let p = 1; p * pageSize <= bytes.length; p++) {
      hashes.set(p, pageHash(p, bytes.subarray((p - 1) * pageSize, p * pageSize), pageSize));
    }
    hashes.resize(Math.floor(bytes.length / pageSize));
    let entry: HistoryEntry | undefined;
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const e = this.#history[i]!;
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
    if (this.#acked.txid < entry.txid) await this.sync();
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

  async stop(timeoutMs = 5000): Promise<PrimaryStopResult> {
    if (!this.#stopped) {
      await this.#tickRunning;
      try {
        if (!this.#deposed) {
          this.#captureRound();
          // What the stream gets last must be the file's state: checked in full when that is cheap.
          if (this.#hashes.pageCount * this.#pageSize <= STOP_VERIFY_MAX_BYTES)
            await this.#verifyFile('stop');
        }
      } catch (err) {
        this.#emit({ type: 'error', error: err as Error });
      }
      this.#stopped = true;
      if (this.#tickTimer) this.#o.clock.clearTimeout(this.#tickTimer);
      this.#tickTimer = undefined;
      if (!this.#deposed && this.#queue.length) {
        this.#pump();
        const target = this.#capturedTxid;
        await withTimeout(
          new Promise<void>((resolve, reject) => {
            if (this.#acked.txid >= target) resolve();
            else this.#ackWaiters.push({ txid: target, resolve, reject });
          }),
          timeoutMs,
          'final wal publish',
        ).catch((err: unknown) => {
          if (!(err instanceof TimeoutError) && !(err instanceof NotLeaderError)) throw err;
        });
      }
      this.#closedHard = true;
      this.#publisher.close();
      this.#rejectWaiters(this.#deposed ?? new ClosedError('wal primary'));
      this.#writeSidecar(true);
      this.#releaseAllPins();
      for (const d of [...this.#pins, this.#ckpt, this.db]) if (d.open) d.close();
      closeSync(this.#dbFd);
      this.#wal.close();
    }
    // Commits, not messages: a message may carry several.
    const unreplicated = [...new Map(this.#queue.map((m) => [m.txid, m.meta.txs])).values()].reduce(
      (a, b) => a + b,
      0,
    );
    return {
      acked: { ...this.#acked },
      unreplicatedTransactions: unreplicated,
      deposed: this.#deposed !== undefined,
    };
  }

  async close(): Promise<void> {
    await this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function openConn(path: string, o: PrimaryOptions): SqliteDatabase {
  const db = openDatabase(path, { fileMustExist: true });
  db.pragma(`busy_timeout = ${o.busyTimeoutMs}`);
  db.pragma('wal_autocheckpoint = 0');
  return db;
}

/**
 * Starts replicating the WAL-mode database at `options.path` to the app's WAL stream as leader with
 * `options.epoch`. On start it computes the database checksum and compares it with the stream's: equal
 * means continuity (the stream already holds this state); otherwise (empty stream, or writes the stream
 * never saw) it publishes the whole database as one `full` transaction and emits `resync`.
 *
 * @example
 * const primary = await createPrimary(nc, { platform: 'prod', app: 'orders', path: '/data/orders.db', epoch: 7 });
 * await primary.write((db) => db.prepare('INSERT INTO t VALUES (?)').run(1));
 * await primary.sync(); // now in the stream
 */
export async function createPrimary(
  nc: NatsConnection,
  options: Partial<PrimaryOptions> & Pick<PrimaryOptions, 'platform' | 'app' | 'path' | 'epoch'>,
): Promise<Primary> {
  const o: PrimaryOptions = { ...defaultPrimaryOptions(), ...options };
  if (o.worker) return createWorkerPrimary(o, (path) => openConn(path, o));
  return startPrimaryEngine(nc, o, undefined);
}

/** Runs `step` while another thread holds the write lock; false when it was not lent within `timeoutMs`. */
export type BorrowWriteLock = (step: () => void, timeoutMs: number) => Promise<boolean>;

/** The capture engine in this thread (internal: {@link createPrimary} and the worker entry). */
export async function startPrimaryEngine(
  nc: NatsConnection,
  o: PrimaryOptions,
  borrowWriteLock: BorrowWriteLock | undefined,
): Promise<Primary> {
  const names = walNames(o.platform, o.app);
  if (!existsSync(o.path)) {
    if (!o.create) throw new Error(`database ${o.path} does not exist`);
    const init = openDatabase(o.path);
    init.pragma('journal_mode = WAL');
    init.close();
  }
  const db = openConn(o.path, o);
  const mode = String(db.pragma('journal_mode', { simple: true }));
  if (mode !== 'wal') {
    db.close();
    throw new NotWalModeError(o.path, mode);
  }
  const pins: [SqliteDatabase, SqliteDatabase] = [openConn(o.path, o), openConn(o.path, o)];
  const ckpt = openConn(o.path, o);
  const dbFd = openSync(o.path, 'r');
  let publisher: StreamPublisher | undefined;
  const closeAll = () => {
    publisher?.close();
    [db, ckpt, ...pins].forEach((d) => d.open && d.close());
    closeSync(dbFd);
  };
  try {
    const jsm = await ensureWalStream(nc, names, o.streamReplicas);
    publisher = new StreamPublisher(nc);
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const maxChunk =
      o.maxChunkBytes > 0 ? Math.min(o.maxChunkBytes, maxPayload - 8192) : Math.max(4096, maxPayload - 8192);
    const p = new PrimaryImpl(o, names, publisher, jsm, db, pins, ckpt, maxChunk, borrowWriteLock, dbFd, nc);
    if (o.onEvent) p.onEvent(o.onEvent);
    await p.start();
    return p;
  } catch (err) {
    closeAll();
    throw err;
  }
}
