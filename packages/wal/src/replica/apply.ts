import {
  closeSync,
  existsSync,
  fstatSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import { PageHashes, formatChecksum, lockPageNumber, pageHash } from '@gc/sqlite';
import type { TimerHandle } from '@gc/core';
import { checkNext } from '../decisions.js';
import { CorruptMessageError } from '../errors.js';
import { writePosition, writePositionAsync, type WalPosition } from '../position.js';
import type { ReplicaOptions } from '../types.js';
import { TxKind, bodyPages, type TxMeta } from '../wire.js';
import type { ReplicaContext } from './context.js';

/** A transaction assembled from the stream, ready to be checked and applied. */
export interface ReadyTx {
  meta: TxMeta;
  body: Buffer;
  lastSeq: number;
}

/** The journal record of one applied batch: the position after it and its transactions' bodies' sizes. */
interface JournalHeader {
  position: WalPosition;
  txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; bodyBytes: number }>;
  crc: number;
}

/** The replica's open files (see Applier.openFiles). */
interface ReplicaFiles {
  db: number;
  journal: number;
  /** The Applier.fileEpoch they belong to. */
  epoch: number;
  /** The replica file's length in bytes. */
  size: { bytes: number };
  /** The journal's length in bytes. */
  journalBytes: number;
}

/**
 * An applied batch is made durable (see Applier.flush) this long after it, together with every batch applied
 * meanwhile: one round of fsyncs and one position write for many batches. Nothing waits for it (the pages
 * are applied and visible at once, and a process crash redoes them from the journal); it bounds how much an
 * OS crash can take back, which the replica then re-fetches from the stream.
 */
const FLUSH_DELAY_MS = 20;

/** The journal is emptied after a flush once it holds this much (see Applier.flush). */
const JOURNAL_KEEP_BYTES = 1 << 20;

const fsyncAsync = (fd: number) =>
  new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

/**
 * Applying checked transactions durably: each batch is checked against the state it must start from,
 * journalled, written, and made durable in the background (fsync, then the position file); a journal left
 * by a crash is redone at start.
 */
export class Applier {
  readonly #ctx: ReplicaContext;
  readonly #o: ReplicaOptions;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
    this.#o = ctx.o;
  }

  /**
   * Checks every transaction against the state it must start from, then makes the valid prefix durable
   * (journal, pages, fsync, position). Throws for the first invalid one after applying those before it.
   */
  async applyBatch(batch: ReadyTx[]): Promise<void> {
    const overlay = new Map<number, bigint>();
    const get = (p: number) => (overlay.has(p) ? overlay.get(p)! : this.#ctx.hashes.get(p));
    let checksum = this.#ctx.hashes.checksum;
    let pages = this.#ctx.hashes.pageCount;
    let txid = this.#ctx.pos.txid;
    let epoch = this.#ctx.pos.epoch;
    const valid: ReadyTx[] = [];
    let failure: Error | undefined;
    for (const tx of batch) {
      const m = tx.meta;
      try {
        // A full message replaces the whole state: it is a valid next step from any earlier txid (a replica
        // behind a trim point, or after a deliberate recovery, continues from it). Everything else must
        // continue exactly where the replica is.
        checkNext({ txid, epoch, checksum }, m, tx.lastSeq);
        if (m.kind === TxKind.Full && valid.length > 0) break; // applied on its own, below
        if (m.kind === TxKind.Full) {
          overlay.clear();
          for (let p = 1; p <= pages; p++) overlay.set(p, 0n);
          checksum = 0n;
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
        this.#ctx.fence.check(m.epoch, `wal txid ${m.txid}`);
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
      await this.applyBatch(batch.slice(valid.length));
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
      pageSizeBytes: txs.reduce((s, t) => t.meta.pageSizeBytes || s, this.#ctx.pos.pageSizeBytes),
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
    // background (flush): one fsync of database and journal for everything applied meanwhile, then the
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
    if (txs[0]!.meta.kind === TxKind.Full) this.#ctx.hashes = new PageHashes();
    for (const [p, h] of hashes) this.#ctx.hashes.set(p, h);
    this.#ctx.hashes.resize(dbPages);
    this.#ctx.pos = next;
    this.#ctx.emit({ type: 'applied', txid: next.txid, seq: next.seq, transactions: txs.length });
    this.#flushTimer ??= this.#o.clock.setTimeout(() => {
      this.#flushTimer = undefined;
      void this.flush();
    }, FLUSH_DELAY_MS);
  }
  #flushTimer: TimerHandle | undefined;

  /**
   * Makes the applied position durable: fsync of database and journal, then the position file (not
   * fsynced: a lost one is older, does not match the file's checksum and only costs a re-bootstrap),
   * then removal of the journal unless a later batch wrote a new one. At most one runs; requests made
   * meanwhile are covered by the next round. Resolves when everything applied so far is durable.
   */
  flush(): Promise<void> {
    if (this.#flushTimer !== undefined) {
      this.#o.clock.clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    this.#flushAgain = true;
    this.flushing ??= (async () => {
      try {
        while (this.#flushAgain) {
          this.#flushAgain = false;
          const files = this.#files;
          if (!files) continue;
          const target = { ...this.#ctx.pos };
          const gen = this.#journalGen;
          await fsyncAsync(files.db);
          await fsyncAsync(files.journal);
          // Re-bootstrapped meanwhile: the new file has its own position (bootstrap() waits for this loop).
          if (files.epoch !== this.fileEpoch) continue;
          await writePositionAsync(this.#ctx.posPath, { ...this.#ctx.sidecar(), ...target });
          // Nothing applied since `target`: every record in the journal is covered by the position now. The
          // journal is emptied only once it is large (a truncation is a metadata write on this thread);
          // until then a crash redoes records the position already covers, in order — the same pages
          // again, ending at the last record's state.
          if (gen === this.#journalGen && files === this.#files && files.journalBytes >= JOURNAL_KEEP_BYTES) {
            ftruncateSync(files.journal, 0);
            files.journalBytes = 0;
          }
          this.#ctx.emit({ type: 'durable', txid: target.txid, seq: target.seq });
        }
      } catch (err) {
        this.#ctx.emit({ type: 'error', error: err as Error });
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** The replica file and the journal, open for appending; reopened after a bootstrap replaced them. */
  #openFiles(): ReplicaFiles {
    if (this.#files && this.#files.epoch === this.fileEpoch) return this.#files;
    this.closeFiles();
    const db = openSync(this.#ctx.replicaPath, 'r+');
    let journal: number;
    try {
      journal = openSync(this.#ctx.journalPath, 'a');
    } catch (err) {
      closeSync(db);
      throw err;
    }
    this.#files = {
      db,
      journal,
      epoch: this.fileEpoch,
      size: { bytes: fstatSync(db).size },
      journalBytes: fstatSync(journal).size,
    };
    return this.#files;
  }
  #files: ReplicaFiles | undefined;
  flushing: Promise<void> | undefined;
  #flushAgain = false;

  /** Closes the open files (callers first make sure no flush uses them). */
  closeFiles(): void {
    const f = this.#files;
    this.#files = undefined;
    if (!f) return;
    closeSync(f.db);
    closeSync(f.journal);
  }

  #journalGen = 0;
  /** Bumped whenever the replica file is replaced (bootstrap), so a flush in flight does not record it. */
  fileEpoch = 0;

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
  recoverJournal(): void {
    if (!existsSync(this.#ctx.journalPath)) return;
    const raw = readFileSync(this.#ctx.journalPath);
    // Records in order, one per batch applied since the journal was last emptied (so some may be older than
    // the recorded position: redoing them in order ends at the last one's state); the first torn one ends
    // it (its pages were never written: a batch's record is complete before its pages are touched).
    let off = 0;
    let redone = 0;
    const fd = openSync(this.#ctx.replicaPath, 'r+');
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
        this.#ctx.pos = header.position;
        redone++;
        off = next;
      }
      if (redone > 0) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (redone > 0) {
      writePosition(this.#ctx.posPath, this.#ctx.sidecar());
      this.#o.logger.info('replica journal redone', { txid: this.#ctx.pos.txid, batches: redone });
    }
    rmSync(this.#ctx.journalPath, { force: true });
  }
}
