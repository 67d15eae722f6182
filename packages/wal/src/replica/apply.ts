import { closeSync, fstatSync, fsync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { PageHashes, formatChecksum, lockPageNumber, pageHash } from '@gc/sqlite';
import type { TimerHandle } from '@gc/core';
import { checkNext } from '../decisions.js';
import { CorruptMessageError } from '../errors.js';
import { writePositionAsync, type WalPosition } from '../position.js';
import type { ReplicaOptions } from '../types.js';
import { TxKind, bodyPages, type TxMeta } from '../wire.js';
import type { ReplicaContext } from './context.js';

/** A transaction assembled from the stream, ready to be checked and applied. */
export interface ReadyTx {
  meta: TxMeta;
  body: Buffer;
  lastSeq: number;
}

/** The replica file, open for writing (see Applier.openFiles). */
interface ReplicaFiles {
  db: number;
  /** The Applier.fileEpoch it belongs to. */
  epoch: number;
  /** The replica file's length in bytes. */
  size: { bytes: number };
}

/** One transaction's pages as written to the replica file. */
export interface TxPages {
  kind: string;
  dbPages: number;
  pageSizeBytes: number;
  body: Buffer;
}

/**
 * An applied batch is made durable (see Applier.flush) this long after it, together with every batch applied
 * meanwhile: one fsync and one position write for many batches. Nothing waits for it (the pages are applied
 * and visible at once, and a crash before it is redone from the stream: see redo.ts); it bounds how much a
 * crash leaves to redo.
 */
const FLUSH_DELAY_MS = 20;

const fsyncAsync = (fd: number) =>
  new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

/**
 * Applying checked transactions durably: each batch is checked against the state it must start from,
 * written, and made durable in the background (fsync, then the position file). A crash in between leaves
 * the file ahead of its position, possibly with a batch half written: the next start redoes it from the
 * stream (redo.ts), whose messages carry whole pages.
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
   * (pages, then in the background fsync and position). Throws for the first invalid one after applying those before it.
   */
  async applyBatch(batch: ReadyTx[]): Promise<void> {
    const overlay = new Map<number, bigint>();
    const hashes = this.#ctx.hashes;
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
          checksum ^= (overlay.has(p) ? overlay.get(p)! : hashes.get(p)) ^ h;
          overlay.set(p, h);
        }
        for (let p = m.dbPages + 1; p <= pages; p++) {
          checksum ^= overlay.has(p) ? overlay.get(p)! : hashes.get(p);
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

  /** Writes a checked batch's pages; `hashes` and `dbPages` are the state after it. */
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
    // Once the pages are written the state is applied: visible to readers of the file, reported
    // (`applied`) and what position() says. Durability follows in the background (flush): one fsync for
    // everything applied meanwhile, then the position file. A crash before that leaves the file ahead of
    // the recorded position, and the next start redoes the transactions after it from the stream (an OS
    // crash that loses unsynced pages is the same case). The file stays open while the replica runs: no
    // open/close per batch, and no close() that would drop the POSIX locks of a SQLite connection this
    // process may hold on the same file.
    const files = this.#openFiles();
    for (const t of txs) {
      writeTxPages(
        files.db,
        { kind: t.meta.kind, dbPages: t.meta.dbPages, pageSizeBytes: t.meta.pageSizeBytes, body: t.body },
        files.size,
      );
    }
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
   * Makes the applied position durable: fsync of the database, then the position file (not fsynced: a lost
   * one is older, and the start after it redoes the transactions after it from the stream). At most one
   * runs; requests made meanwhile are covered by the next round. Resolves when everything applied so far
   * is durable.
   */
  flush(): Promise<void> {
    if (this.#flushTimer !== undefined) {
      this.#o.clock.clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    this.#flushAgain = true;
    if (!this.flushing) {
      // Cleared once this round has ended — asynchronously, after the assignment: a round with nothing to
      // do ends without awaiting anything, and clearing from inside it would run before `flushing` is set,
      // leaving a settled promise there that every later flush() returned without flushing.
      const round = this.#flushRounds().finally(() => {
        if (this.flushing === round) this.flushing = undefined;
      });
      this.flushing = round;
    }
    return this.flushing;
  }

  async #flushRounds(): Promise<void> {
    try {
      while (this.#flushAgain) {
        this.#flushAgain = false;
        const files = this.#files;
        if (!files) continue;
        const target = { ...this.#ctx.pos };
        await fsyncAsync(files.db);
        // Re-bootstrapped meanwhile: the new file has its own position (bootstrap() waits for this loop).
        if (files.epoch !== this.fileEpoch) continue;
        await writePositionAsync(this.#ctx.posPath, { ...this.#ctx.sidecar(), ...target });
        this.#ctx.emit({ type: 'durable', txid: target.txid, seq: target.seq });
      }
    } catch (err) {
      this.#ctx.emit({ type: 'error', error: err as Error });
    }
  }

  /** The replica file, open for writing; reopened after a bootstrap replaced it. */
  #openFiles(): ReplicaFiles {
    if (this.#files && this.#files.epoch === this.fileEpoch) return this.#files;
    this.closeFiles();
    const db = openSync(this.#ctx.replicaPath, 'r+');
    this.#files = { db, epoch: this.fileEpoch, size: { bytes: fstatSync(db).size } };
    return this.#files;
  }
  #files: ReplicaFiles | undefined;
  flushing: Promise<void> | undefined;
  #flushAgain = false;

  /** Closes the open file (callers first make sure no flush uses it). */
  closeFiles(): void {
    const f = this.#files;
    this.#files = undefined;
    if (f) closeSync(f.db);
  }

  /** Bumped whenever the replica file is replaced (bootstrap), so a flush in flight does not record it. */
  fileEpoch = 0;
}

/**
 * Writes one transaction's pages to the replica file `fd` and sets the file's size (a `full` transaction
 * first empties it). `size` tracks the file's length in bytes so that an unchanged size costs no
 * `ftruncate` (undefined: always set it).
 */
export function writeTxPages(fd: number, t: TxPages, size?: { bytes: number }): void {
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
