import { readSync } from 'node:fs';
import { formatChecksum, headerPageSize } from '@gc/sqlite';
import type { PrimaryOptions } from '../types.js';
import type { Capture } from './capture.js';
import type { Checkpointer } from './checkpoint.js';
import type { PrimaryContext } from './context.js';

/**
 * Verification of the database file against the captured state: a cheap look at its header every round,
 * and a full comparison when the header says so, periodically and at `stop()`.
 */
export class FileVerifier {
  readonly #ctx: PrimaryContext;
  readonly #o: PrimaryOptions;
  readonly #capture: Capture;
  readonly #checkpointer: Checkpointer;
  /** Monotonic ms of the last full verification of the file against the captured state. */
  verifiedAt = 0;
  verifyWanted: string | undefined;

  constructor(ctx: PrimaryContext, capture: Capture, checkpointer: Checkpointer) {
    this.#ctx = ctx;
    this.#o = ctx.o;
    this.#capture = capture;
    this.#checkpointer = checkpointer;
  }

  /**
   * A cheap look at the database file's header each round: a commit that did not go through the WAL (a
   * connection in rollback-journal mode, the file replaced) bumps the change counter beyond the captured
   * one, or changes the page size or the WAL mode bytes. Then the whole file is verified.
   */
  checkHeader(): void {
    if (!this.#ctx.pageSize) return;
    const h = Buffer.allocUnsafe(100);
    if (readSync(this.#capture.dbFd, h, 0, 100, 0) < 100) return;
    const counter = h.readUInt32BE(24);
    const why =
      ((counter - this.#capture.changeCounter) | 0) > 0
        ? `the file's change counter is ${counter}, the captured one ${this.#capture.changeCounter}`
        : headerPageSize(h, this.#o.path) !== this.#ctx.pageSize
          ? 'the page size changed'
          : h[18] !== 2 || h[19] !== 2
            ? 'the database left WAL mode'
            : undefined;
    if (why) this.verifyWanted ??= why;
  }

  /**
   * Compares the file's whole state (database file overlaid with the WAL's committed frames) with the
   * captured one, under the write lock so that nothing commits meanwhile. A difference means commits
   * escaped the WAL capture: the file is the truth of this primary's history (it has been publishing it),
   * so it is published in full (`resync`, with the reason) — nothing is lost, and `sync()` reports success
   * only once the stream holds it. False when the lock was not had in time (tried again later).
   */
  async verifyFile(reason: string): Promise<boolean> {
    let mismatch: string | undefined;
    const done = await this.#checkpointer.underWriteLock(
      () => {
        this.#capture.readNew();
        const state = this.#capture.readState();
        if (
          state.hashes.checksum === this.#ctx.hashes.checksum &&
          state.hashes.pageCount === this.#ctx.hashes.pageCount
        )
          return;
        mismatch = `the database file holds changes that did not go through the WAL (${reason}): file checksum ${formatChecksum(state.hashes.checksum)} (${state.hashes.pageCount} pages), captured ${formatChecksum(this.#ctx.hashes.checksum)} (${this.#ctx.hashes.pageCount} pages)`;
        const before = this.#ctx.hashes.checksum;
        this.#ctx.hashes = state.hashes;
        this.#ctx.pageSize = state.pageSize;
        this.#capture.cursor = state.cursor;
        this.#capture.framesInGeneration = state.txs.reduce((n, t) => n + t.frames, 0);
        this.#capture.changeCounter = state.page(1).readUInt32BE(24);
        this.#capture.queueFull(state.page, mismatch, before);
      },
      Math.max(this.#o.checkpointLockTimeoutMs, 250),
    );
    if (done) {
      this.verifiedAt = this.#o.clock.now();
      if (mismatch)
        this.#ctx.emit({ type: 'error', error: new Error(`wal capture missed commits: ${mismatch}`) });
    }
    return done;
  }
}
