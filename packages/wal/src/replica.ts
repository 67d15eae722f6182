import { emitAll } from './listeners.js';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { fsync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  DeliverPolicy,
  jetstream,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import {
  ClosedError,
  createFence,
  realClock,
  silentLogger,
  withTimeout,
  type Clock,
  type Fence,
  type Logger,
} from '@gc/core';
import {
  PageHashes,
  formatChecksum,
  hashFile,
  lockPageNumber,
  openDatabase,
  pageHash,
  parseChecksum,
  type SnapshotSource,
  type SnapshotStore,
} from '@gc/snapshot';
import { CorruptMessageError, DivergedError, GapError, UnreplicatedWritesError } from './errors.js';
import { fsyncDir, readPosition, writePosition, writePositionAsync, type WalPosition } from './position.js';
import { primarySidecarPath } from './primary.js';
import { ensureWalStream, walNames, type WalNames } from './stream.js';
import { TxAssembler, TxKind, WalHeader, bodyPages, parseChunk, type TxMeta } from './wire.js';

/** Options of {@link createReplica}. */
export interface ReplicaOptions {
  /** Platform name. */
  platform: string;
  /** App name. */
  app: string;
  /** Data path of the database (where the app reads it when this node is active). */
  path: string;
  /** Where the replica copy is kept while passive. Default `${path}.replica` (same directory). */
  replicaPath: string;
  /** Snapshot store for bootstrap and re-bootstrap. Without it, a replica can only start from txid 1. */
  snapshots: SnapshotStore | undefined;
  /** At most this many transactions per durable apply batch. Default 512. */
  batchMaxTransactions: number;
  /** At most this many body bytes per batch. Default 64 MiB. */
  batchMaxBytes: number;
  /** Wait before retrying after an error, in ms. Default 500. */
  retryDelayMs: number;
  /** Stream replicas when the stream is created. Default 1. */
  streamReplicas: number;
  /** Injectable clock. */
  clock: Clock;
  /** Logger. */
  logger: Logger;
  /** Listener registered before start, so it also sees the start-up events (`bootstrap`, `unreplicated-writes`). */
  onEvent: ((e: ReplicaEvent) => void) | undefined;
}

/** Defaults of {@link ReplicaOptions} (platform, app and path have none). */
export function defaultReplicaOptions(): Omit<ReplicaOptions, 'platform' | 'app' | 'path' | 'replicaPath'> {
  return {
    snapshots: undefined,
    batchMaxTransactions: 512,
    batchMaxBytes: 64 << 20,
    retryDelayMs: 500,
    streamReplicas: 1,
    clock: realClock,
    logger: silentLogger,
    onEvent: undefined,
  };
}

/** What a replica reports. */
export type ReplicaEvent =
  | { type: 'applied'; txid: number; seq: number; transactions: number }
  | { type: 'durable'; txid: number; seq: number }
  | { type: 'bootstrap'; from: 'snapshot' | 'empty' | 'local' | 'adopted'; txid: number; reason?: string }
  | { type: 'unreplicated-writes'; error: UnreplicatedWritesError }
  | { type: 'refused'; error: Error }
  | { type: 'error'; error: Error };

/** Replication lag of a replica. */
export interface ReplicaLag {
  /** Transactions in the stream not yet applied. */
  transactions: number;
  /** Seconds since the oldest unapplied transaction was stored (0 when caught up). */
  seconds: number;
  /** Last complete txid in the stream as far as known. */
  streamTxid: number;
}

/** Durations of the promotion phases, in ms. */
export interface PromotionTimings {
  catchUpMs: number;
  verifyMs: number;
  moveMs: number;
  startMs: number;
  totalMs: number;
}

/** A replica of one app's database. See {@link createReplica}. */
export interface Replica {
  /** Path of the replica copy. */
  readonly replicaPath: string;
  /**
   * Position applied: the replica file holds this state (a process crash redoes it from the journal).
   * It is fsynced and recorded shortly after (the `durable` event); {@link Replica.close} waits for that.
   */
  position(): WalPosition;
  /** Lag against the stream (asks the server). */
  lag(): Promise<ReplicaLag>;
  /** Subscribes to events; returns an unsubscribe function. */
  onEvent(listener: (e: ReplicaEvent) => void): () => void;
  /** Resolves once `txid` is applied. */
  waitForTxid(txid: number, timeoutMs?: number): Promise<WalPosition>;
  /** Resolves once everything in the stream at call time is consumed (an incomplete last transaction is skipped). */
  catchUp(timeoutMs?: number): Promise<WalPosition>;
  /** Copies the replica (quiescent between batches) into `dir/snapshot.db` with its position. */
  snapshotTo(dir: string): Promise<SnapshotSource>;
  /** Stops consuming; keeps the files. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface ReadyTx {
  meta: TxMeta;
  body: Buffer;
  lastSeq: number;
}

interface JournalHeader {
  position: WalPosition;
  txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; bodyBytes: number }>;
  crc: number;
}

/** The replica's open files (see #openFiles). */
interface ReplicaFiles {
  db: number;
  journal: number;
  /** The #fileEpoch they belong to. */
  epoch: number;
  /** The replica file's length in bytes. */
  size: { bytes: number };
  /** The journal's length in bytes. */
  journalBytes: number;
}

/** The journal is emptied after a flush once it holds this much (see #flush). */
const JOURNAL_KEEP_BYTES = 1 << 20;

const fsyncAsync = (fd: number) =>
  new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

class ReplicaImpl implements Replica {
  readonly replicaPath: string;
  readonly #o: ReplicaOptions;
  readonly #names: WalNames;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #listeners = new Set<(e: ReplicaEvent) => void>();
  readonly #posPath: string;
  readonly #journalPath: string;
  #hashes = new PageHashes();
  #pos: WalPosition = {
    txid: 0,
    seq: 0,
    epoch: 0,
    checksum: formatChecksum(0n),
    pageSizeBytes: 0,
    dbPages: 0,
  };
  #fence: Fence = createFence();
  #closed = false;
  #loop: Promise<void> | undefined;
  #messages: ConsumerMessages | undefined;
  #deliveredSeq = 0;
  #batch: ReadyTx[] = [];
  #batchBytes = 0;
  #applyLock: Promise<unknown> = Promise.resolve();
  #waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  readonly #pullMessages: number;

  constructor(
    o: ReplicaOptions,
    names: WalNames,
    js: JetStreamClient,
    jsm: JetStreamManager,
    pullMessages: number,
  ) {
    this.#pullMessages = pullMessages;
    this.#o = o;
    this.#names = names;
    this.#js = js;
    this.#jsm = jsm;
    this.replicaPath = o.replicaPath;
    this.#posPath = `${o.replicaPath}.gc-position.json`;
    this.#journalPath = `${o.replicaPath}.gc-journal`;
  }

  #emit(e: ReplicaEvent): void {
    emitAll(this.#listeners, e, this.#o.logger, 'replica');
  }

  onEvent(listener: (e: ReplicaEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  position(): WalPosition {
    return { ...this.#pos };
  }

  #notify(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  #waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.#waiters.push({ check, resolve })),
      timeoutMs,
      what,
    );
  }

  // ---- startup ----

  async start(): Promise<void> {
    // Ownership first: refuse before touching anything.
    readPosition(this.#posPath, this.#names.platform, this.#names.app);
    readPosition(primarySidecarPath(this.#o.path), this.#names.platform, this.#names.app);
    await this.#adoptDataPath();
    await this.#loadOrBootstrap();
    this.#loop = this.#run();
  }

  /** A database at the data path is a former primary's: adopt it if the stream has its exact state. */
  async #adoptDataPath(): Promise<void> {
    const path = this.#o.path;
    if (!existsSync(path)) return;
    const db = openDatabase(path, { fileMustExist: true });
    db.close(); // recovers and checkpoints a leftover -wal into the file, then removes it
    const local = hashFile(path);
    const sidecar = readPosition(primarySidecarPath(path), this.#names.platform, this.#names.app);
    const found = await this.#findState(local.checksum, local.pageCount, sidecar?.seq ?? 0);
    if (found) {
      this.#removeReplicaFiles();
      renameSync(path, this.replicaPath);
      this.#pos = found;
      writePosition(this.#posPath, this.#sidecar());
      rmSync(primarySidecarPath(path), { force: true });
      fsyncDir(dirname(this.replicaPath));
      this.#emit({ type: 'bootstrap', from: 'adopted', txid: found.txid });
      return;
    }
    const saved = `${path}.unreplicated-${this.#o.clock.wallNow()}`;
    renameSync(path, saved);
    rmSync(primarySidecarPath(path), { force: true });
    const error = new UnreplicatedWritesError(
      path,
      saved,
      formatChecksum(local.checksum),
      sidecar?.txid ?? 0,
    );
    this.#o.logger.error('unreplicated writes detected', { err: error.message });
    this.#emit({ type: 'unreplicated-writes', error });
  }

  /** Scans the stream headers from `fromSeq` for a complete transaction whose after-state is `checksum`. */
  async #findState(checksum: bigint, pages: number, fromSeq: number): Promise<WalPosition | undefined> {
    const info = await this.#jsm.streams.info(this.#names.stream);
    const last = info.state.last_seq;
    if (last === 0) return checksum === 0n ? { ...this.#pos } : undefined;
    const start = Math.max(info.state.first_seq, fromSeq || info.state.first_seq);
    // The stream may have been trimmed past this state (it is kept only above the oldest snapshot):
    // then a snapshot at exactly this state proves it was replicated.
    if (info.state.messages === 0 || start > last) return this.#findSnapshotState(checksum, pages);
    const consumer = await this.#js.consumers.get(this.#names.stream, {
      filter_subjects: this.#names.subject,
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
    }
    return found ?? this.#findSnapshotState(checksum, pages);
  }

  /** A stored snapshot whose state is exactly `checksum` / `pages`, as a position; undefined when none. */
  async #findSnapshotState(checksum: bigint, pages: number): Promise<WalPosition | undefined> {
    const list = this.#o.snapshots ? await this.#o.snapshots.list() : [];
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

  #removeReplicaFiles(): void {
    for (const f of [
      this.replicaPath,
      this.#posPath,
      this.#journalPath,
      `${this.replicaPath}-wal`,
      `${this.replicaPath}-shm`,
    ]) {
      rmSync(f, { force: true });
    }
  }

  #sidecar() {
    return {
      ...this.#pos,
      platform: this.#names.platform,
      app: this.#names.app,
      role: 'replica' as const,
      updatedAtMs: this.#o.clock.wallNow(),
    };
  }

  async #loadOrBootstrap(): Promise<void> {
    const pos = readPosition(this.#posPath, this.#names.platform, this.#names.app);
    if (pos && existsSync(this.replicaPath)) {
      this.#pos = pos;
      this.#recoverJournal();
      const hashes = hashFile(this.replicaPath, {
        pageSizeBytes: this.#pos.pageSizeBytes || undefined,
        pageCount: this.#pos.dbPages,
      });
      if (formatChecksum(hashes.checksum) === this.#pos.checksum) {
        this.#hashes = hashes;
        this.#fence = createFence();
        this.#fence.check(Math.max(1, this.#pos.epoch), 'replica start');
        this.#emit({ type: 'bootstrap', from: 'local', txid: this.#pos.txid });
        return;
      }
      const err = new DivergedError(
        `replica ${this.replicaPath} at txid ${pos.txid}`,
        formatChecksum(hashes.checksum),
        pos.checksum,
      );
      this.#emit({ type: 'refused', error: err });
      await this.#bootstrap(err.message);
      return;
    }
    await this.#bootstrap(pos ? 'replica file missing' : 'no replica yet');
  }

  /** Replaces the replica with the newest snapshot that verifies (or an empty database). */
  async #bootstrap(reason: string): Promise<void> {
    this.#fileEpoch++;
    // A flush in flight may still record the old file's position or fsync its descriptors: let it end
    // (it skips the rest once it sees the new epoch), then close them.
    await this.#flushing;
    this.#closeFiles();
    if (existsSync(this.replicaPath)) {
      const aside = `${this.replicaPath}.refused-${this.#o.clock.wallNow()}`;
      renameSync(this.replicaPath, aside);
      rmSync(aside, { force: true });
    }
    this.#removeReplicaFiles();
    this.#fence = createFence();
    const latest = this.#o.snapshots ? await this.#o.snapshots.latest() : undefined;
    if (this.#o.snapshots && latest) {
      const info = await this.#o.snapshots.restore(this.replicaPath);
      this.#pos = {
        txid: info.txid,
        seq: info.seq,
        epoch: info.epoch,
        checksum: info.checksum,
        pageSizeBytes: info.pageSizeBytes,
        dbPages: info.pageCount,
      };
      this.#hashes = hashFile(this.replicaPath, {
        pageSizeBytes: info.pageSizeBytes,
        pageCount: info.pageCount,
      });
      if (this.#pos.epoch > 0) this.#fence.check(this.#pos.epoch, 'snapshot');
      this.#emit({ type: 'bootstrap', from: 'snapshot', txid: info.txid, reason });
    } else {
      writeFileSync(this.replicaPath, Buffer.alloc(0));
      this.#pos = { txid: 0, seq: 0, epoch: 0, checksum: formatChecksum(0n), pageSizeBytes: 0, dbPages: 0 };
      this.#hashes = new PageHashes();
      this.#emit({ type: 'bootstrap', from: 'empty', txid: 0, reason });
    }
    writePosition(this.#posPath, this.#sidecar());
    fsyncDir(dirname(this.replicaPath));
    this.#deliveredSeq = this.#pos.seq;
  }

  // ---- consuming ----

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#consume();
      } catch (err) {
        if (this.#closed) break;
        const e = err as Error;
        this.#batch = [];
        this.#batchBytes = 0;
        if (e instanceof GapError || e instanceof DivergedError || e instanceof CorruptMessageError) {
          this.#o.logger.warn('replica refused stream data', { err: e.message });
          this.#emit({ type: 'refused', error: e });
          try {
            await this.#locked(() => this.#bootstrap(e.message));
          } catch (be) {
            this.#emit({ type: 'error', error: be as Error });
          }
        } else {
          this.#emit({ type: 'error', error: e });
        }
        await this.#o.clock.sleep(this.#o.retryDelayMs).catch(() => undefined);
      }
    }
  }

  async #consume(): Promise<void> {
    const startSeq = this.#pos.seq + 1;
    this.#deliveredSeq = this.#pos.seq;
    const consumer = await this.#js.consumers.get(this.#names.stream, {
      filter_subjects: this.#names.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
    });
    const assembler = new TxAssembler();
    // Bound a pull to ~32 MiB of the largest possible messages: 512 one-megabyte chunks would overrun
    // the server's per-connection pending limit, dropping deliveries and resetting the ordered consumer.
    // (A `max_bytes` pull stalls until it expires when the next message does not fit the budget.)
    const iter = await consumer.consume({ max_messages: this.#pullMessages });
    this.#messages = iter;
    if (this.#closed) iter.stop();
    try {
      for await (const m of iter) {
        if (this.#closed) break;
        const chunk = parseChunk(m.headers, m.data, m.seq);
        const tx = assembler.add(chunk, m.data, m.seq);
        if (tx) {
          this.#batch.push({ meta: tx.meta, body: tx.body, lastSeq: tx.lastSeq });
          this.#batchBytes += tx.body.length;
        }
        this.#deliveredSeq = m.seq;
        if (
          this.#batch.length > 0 &&
          (m.info.pending === 0 ||
            this.#batch.length >= this.#o.batchMaxTransactions ||
            this.#batchBytes >= this.#o.batchMaxBytes ||
            tx?.meta.kind === TxKind.Full)
        ) {
          const batch = this.#batch;
          this.#batch = [];
          this.#batchBytes = 0;
          await this.#locked(() => this.#applyBatch(batch));
        }
        this.#notify();
      }
    } finally {
      iter.stop();
      this.#messages = undefined;
    }
  }

  #locked<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#applyLock.then(fn, fn);
    this.#applyLock = run.catch(() => undefined);
    return run;
  }

  /**
   * Checks every transaction against the state it must start from, then makes the valid prefix durable
   * (journal, pages, fsync, position). Throws for the first invalid one after applying those before it.
   */
  async #applyBatch(batch: ReadyTx[]): Promise<void> {
    const overlay = new Map<number, bigint>();
    const get = (p: number) => (overlay.has(p) ? overlay.get(p)! : this.#hashes.get(p));
    let checksum = this.#hashes.checksum;
    let pages = this.#hashes.pageCount;
    let txid = this.#pos.txid;
    let epoch = this.#pos.epoch;
    const valid: ReadyTx[] = [];
    let failure: Error | undefined;
    for (const tx of batch) {
      const m = tx.meta;
      try {
        if (m.txid - m.txs + 1 !== txid + 1) throw new GapError(txid + 1, m.txid - m.txs + 1, tx.lastSeq);
        if (m.epoch < epoch) {
          throw new DivergedError(
            `txid ${m.txid} carries epoch ${m.epoch} below ${epoch}`,
            formatChecksum(checksum),
            formatChecksum(m.before),
          );
        }
        if (m.kind === TxKind.Full) {
          if (valid.length > 0) throw new Error('internal: full transaction must start a batch');
          overlay.clear();
          for (let p = 1; p <= pages; p++) overlay.set(p, 0n);
          checksum = 0n;
        } else if (m.before !== checksum) {
          throw new DivergedError(
            `txid ${m.txid} at stream seq ${tx.lastSeq}`,
            formatChecksum(checksum),
            formatChecksum(m.before),
          );
        }
        const lock = m.pageSizeBytes ? lockPageNumber(m.pageSizeBytes) : 0;
        for (const [p, page] of bodyPages(tx.body, m.pageSizeBytes)) {
          if (p < 1 || p > m.dbPages || p === lock)
            throw new CorruptMessageError(tx.lastSeq, `page number ${p} outside 1..${m.dbPages}`);
          const h = pageHash(p, page, m.pageSizeBytes);
          checksum ^= get(p) ^ h;
          overlay.set(p, h);
        }
        for (let p = m.dbPages + 1; p <= pages; p++) {
          checksum ^= get(p);
          overlay.set(p, 0n);
        }
        pages = m.dbPages;
        if (checksum !== m.after) {
          throw new CorruptMessageError(
            tx.lastSeq,
            `pages of txid ${m.txid} give checksum ${formatChecksum(checksum)}, header says ${formatChecksum(m.after)}`,
          );
        }
        this.#fence.check(m.epoch, `wal txid ${m.txid}`);
        txid = m.txid;
        epoch = m.epoch;
        valid.push(tx);
        if (m.kind === TxKind.Full) break;
      } catch (err) {
        failure = err as Error;
        break;
      }
    }
    if (valid.length > 0) this.#commit(valid, overlay, pages);
    if (!failure && valid.length < batch.length) {
      // A full transaction ends a batch; apply the rest on their own.
      await this.#applyBatch(batch.slice(valid.length));
      return;
    }
    if (failure) throw failure;
  }

  /** Writes a checked batch: journal record, then pages; `hashes` and `dbPages` are the state after it. */
  #commit(txs: ReadyTx[], hashes: Map<number, bigint>, dbPages: number): void {
    const last = txs.at(-1)!;
    const next: WalPosition = {
      txid: last.meta.txid,
      seq: last.lastSeq,
      epoch: last.meta.epoch,
      checksum: formatChecksum(last.meta.after),
      pageSizeBytes: txs.reduce((s, t) => t.meta.pageSizeBytes || s, this.#pos.pageSizeBytes),
      dbPages: last.meta.dbPages,
    };
    const header: JournalHeader = {
      position: next,
      txs: txs.map((t) => ({
        kind: t.meta.kind,
        dbPages: t.meta.dbPages,
        pageSizeBytes: t.meta.pageSizeBytes,
        bodyBytes: t.body.length,
      })),
      crc: 0,
    };
    let crc = 0;
    for (const t of txs) crc = crc32(t.body, crc);
    header.crc = crc;
    const hb = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(hb.length);
    // The journal record is appended before the pages are written, so a process crash in the middle is
    // redone from it (the page cache keeps both). Once the pages are written the state is applied: visible
    // to readers of the file, reported (`applied`) and what position() says. Durability follows in the
    // background (#flush): one fsync of database and journal for everything applied meanwhile, then the
    // position file; the journal keeps every batch since it was last emptied (past 1 MiB), so a crash
    // before any of that still redoes them all. An OS crash that loses unsynced pages leaves an older
    // position whose checksum no longer matches the file: the replica re-bootstraps — never wrong, and the
    // apply path never waits for the disk. Files stay open while the replica runs: no open/close per
    // batch, and no close() that would drop the POSIX locks of a SQLite connection this process may hold
    // on the same file.
    const files = this.#openFiles();
    files.journalBytes += writevSync(files.journal, [len, hb, ...txs.map((t) => t.body)]);
    this.#journalGen++;
    this.#writePages(
      files.db,
      txs.map((t) => ({
        kind: t.meta.kind,
        dbPages: t.meta.dbPages,
        pageSizeBytes: t.meta.pageSizeBytes,
        body: t.body,
      })),
      files.size,
    );
    // The hashes were computed while checking the batch.
    if (txs[0]!.meta.kind === TxKind.Full) this.#hashes = new PageHashes();
    for (const [p, h] of hashes) this.#hashes.set(p, h);
    this.#hashes.resize(dbPages);
    this.#pos = next;
    this.#emit({ type: 'applied', txid: next.txid, seq: next.seq, transactions: txs.length });
    void this.#flush();
  }

  /**
   * Makes the applied position durable: fsync of database and journal, then the position file (not
   * fsynced: a lost one is older, does not match the file's checksum and only costs a re-bootstrap),
   * then removal of the journal unless a later batch wrote a new one. At most one runs; requests made
   * meanwhile are covered by the next round. Resolves when everything applied so far is durable.
   */
  #flush(): Promise<void> {
    this.#flushAgain = true;
    this.#flushing ??= (async () => {
      try {
        while (this.#flushAgain) {
          this.#flushAgain = false;
          const files = this.#files;
          if (!files) continue;
          const target = { ...this.#pos };
          const gen = this.#journalGen;
          await fsyncAsync(files.db);
          await fsyncAsync(files.journal);
          // Re-bootstrapped meanwhile: the new file has its own position (#bootstrap waits for this loop).
          if (files.epoch !== this.#fileEpoch) continue;
          await writePositionAsync(this.#posPath, { ...this.#sidecar(), ...target });
          // Nothing applied since `target`: every record in the journal is covered by the position now. The
          // journal is emptied only once it is large (a truncation is a metadata write on this thread);
          // until then a crash redoes records the position already covers, in order — the same pages
          // again, ending at the last record's state.
          if (gen === this.#journalGen && files === this.#files && files.journalBytes >= JOURNAL_KEEP_BYTES) {
            ftruncateSync(files.journal, 0);
            files.journalBytes = 0;
          }
          this.#emit({ type: 'durable', txid: target.txid, seq: target.seq });
        }
      } catch (err) {
        this.#emit({ type: 'error', error: err as Error });
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  /** The replica file and the journal, open for appending; reopened after a bootstrap replaced them. */
  #openFiles(): ReplicaFiles {
    if (this.#files && this.#files.epoch === this.#fileEpoch) return this.#files;
    this.#closeFiles();
    const db = openSync(this.replicaPath, 'r+');
    let journal: number;
    try {
      journal = openSync(this.#journalPath, 'a');
    } catch (err) {
      closeSync(db);
      throw err;
    }
    this.#files = {
      db,
      journal,
      epoch: this.#fileEpoch,
      size: { bytes: fstatSync(db).size },
      journalBytes: fstatSync(journal).size,
    };
    return this.#files;
  }
  #files: ReplicaFiles | undefined;
  #flushing: Promise<void> | undefined;
  #flushAgain = false;

  /** Closes the open files (callers first make sure no flush uses them). */
  #closeFiles(): void {
    const f = this.#files;
    this.#files = undefined;
    if (!f) return;
    closeSync(f.db);
    closeSync(f.journal);
  }

  #journalGen = 0;
  /** Bumped whenever the replica file is replaced (bootstrap), so a flush in flight does not record it. */
  #fileEpoch = 0;

  /**
   * Writes the batch's pages and sets the file's size. `size` tracks the file's length in bytes so that
   * an unchanged size costs no `ftruncate` (undefined: always set it).
   */
  #writePages(
    fd: number,
    txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; body: Buffer }>,
    size?: { bytes: number },
  ): void {
    for (const t of txs) {
      if (t.kind === TxKind.Full) {
        ftruncateSync(fd, 0);
        if (size) size.bytes = 0;
      }
      for (const [p, page] of bodyPages(t.body, t.pageSizeBytes)) {
        const at = (p - 1) * t.pageSizeBytes;
        writeSync(fd, page, 0, page.length, at);
        if (size) size.bytes = Math.max(size.bytes, at + page.length);
      }
      const want = t.dbPages * t.pageSizeBytes;
      if (t.pageSizeBytes && (!size || size.bytes !== want)) {
        ftruncateSync(fd, want);
        if (size) size.bytes = want;
      }
    }
  }

  /** Redoes a journal left by a crash between journal and position (idempotent); drops a torn one. */
  #recoverJournal(): void {
    if (!existsSync(this.#journalPath)) return;
    const raw = readFileSync(this.#journalPath);
    // Records in order, one per batch applied since the journal was last emptied (so some may be older than
    // the recorded position: redoing them in order ends at the last one's state); the first torn one ends
    // it (its pages were never written: a batch's record is complete before its pages are touched).
    let off = 0;
    let redone = 0;
    const fd = openSync(this.replicaPath, 'r+');
    try {
      while (off < raw.length) {
        let next: number;
        let header: JournalHeader;
        let txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; body: Buffer }>;
        try {
          const hl = raw.readUInt32BE(off);
          header = JSON.parse(raw.subarray(off + 4, off + 4 + hl).toString()) as JournalHeader;
          let at = off + 4 + hl;
          txs = header.txs.map((t) => {
            const body = raw.subarray(at, at + t.bodyBytes);
            at += t.bodyBytes;
            return { ...t, body };
          });
          let crc = 0;
          for (const t of txs) crc = crc32(t.body, crc);
          if (
            at > raw.length ||
            txs.some((t, i) => t.body.length !== header.txs[i]!.bodyBytes) ||
            crc !== header.crc
          )
            throw new Error('torn journal record');
          next = at;
        } catch (err) {
          this.#o.logger.info('replica dropped a torn journal record', { err: String(err), offset: off });
          break;
        }
        this.#writePages(fd, txs);
        this.#pos = header.position;
        redone++;
        off = next;
      }
      if (redone > 0) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (redone > 0) {
      writePosition(this.#posPath, this.#sidecar());
      this.#o.logger.info('replica journal redone', { txid: this.#pos.txid, batches: redone });
    }
    rmSync(this.#journalPath, { force: true });
  }

  // ---- public ----

  async lag(): Promise<ReplicaLag> {
    const info = await this.#jsm.streams.info(this.#names.stream);
    const last = info.state.last_seq;
    if (last <= this.#pos.seq) return { transactions: 0, seconds: 0, streamTxid: this.#pos.txid };
    const [tip, next] = await Promise.all([
      this.#jsm.streams.getMessage(this.#names.stream, { seq: last }),
      this.#jsm.streams.getMessage(this.#names.stream, {
        seq: Math.max(info.state.first_seq, this.#pos.seq + 1),
      }),
    ]);
    const streamTxid = Number(tip?.header.get(WalHeader.Txid) ?? this.#pos.txid);
    const transactions = Math.max(0, streamTxid - this.#pos.txid);
    const seconds =
      transactions > 0 && next ? Math.max(0, (this.#o.clock.wallNow() - next.time.getTime()) / 1000) : 0;
    return { transactions, seconds, streamTxid };
  }

  waitForTxid(txid: number, timeoutMs = 30_000): Promise<WalPosition> {
    return this.#waitUntil(() => this.#pos.txid >= txid, timeoutMs, `replica apply of txid ${txid}`).then(
      () => this.position(),
    );
  }

  async catchUp(timeoutMs = 30_000): Promise<WalPosition> {
    if (this.#closed) throw new ClosedError('wal replica');
    const info = await this.#jsm.streams.info(this.#names.stream);
    const last = info.state.last_seq;
    await this.#waitUntil(
      () => this.#pos.seq >= last || (this.#deliveredSeq >= last && this.#batch.length === 0),
      timeoutMs,
      `replica catch-up to stream seq ${last}`,
    );
    await this.#applyLock;
    return this.position();
  }

  snapshotTo(dir: string): Promise<SnapshotSource> {
    return this.#locked(() => {
      const path = join(dir, 'snapshot.db');
      copyFileSync(this.replicaPath, path);
      const fd = openSync(path, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      return {
        path,
        position: {
          txid: this.#pos.txid,
          seq: this.#pos.seq,
          epoch: this.#pos.epoch,
          checksum: this.#pos.checksum,
          pageSizeBytes: this.#pos.pageSizeBytes,
          pageCount: this.#pos.dbPages,
        },
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#messages?.stop();
    await this.#loop?.catch(() => undefined);
    await this.#applyLock;
    await this.#flush();
    this.#closeFiles();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a replica of an app's database. On start it (1) refuses a directory owned by another app,
 * (2) adopts a former primary's database at `path` if the stream holds its exact state, or moves it
 * aside and reports {@link UnreplicatedWritesError}, (3) verifies its own copy against its recorded
 * position, (4) otherwise bootstraps from the newest snapshot that verifies; then applies the stream
 * in order.
 *
 * @example
 * const replica = await createReplica(nc, { platform: 'prod', app: 'orders', path: '/data/orders.db', snapshots: store });
 * console.log(await replica.lag());
 */
export async function createReplica(
  nc: NatsConnection,
  options: Partial<ReplicaOptions> & Pick<ReplicaOptions, 'platform' | 'app' | 'path'>,
): Promise<Replica> {
  const o: ReplicaOptions = {
    ...defaultReplicaOptions(),
    replicaPath: `${options.path}.replica`,
    ...options,
  };
  const names = walNames(o.platform, o.app);
  const jsm = await ensureWalStream(nc, names, o.streamReplicas);
  const maxPayload = nc.info?.max_payload ?? 1 << 20;
  const r = new ReplicaImpl(
    o,
    names,
    jetstream(nc),
    jsm,
    Math.max(4, Math.min(512, Math.floor((32 << 20) / maxPayload))),
  );
  if (o.onEvent) r.onEvent(o.onEvent);
  await r.start();
  return r;
}
