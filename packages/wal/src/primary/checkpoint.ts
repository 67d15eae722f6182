import type { SqliteDatabase } from '@gc/sqlite';
import type { PrimaryOptions } from '../types.js';
import type { Capture } from './capture.js';
import type { PrimaryContext } from './context.js';

/** Runs `step` while another thread holds the write lock; false when it was not lent within `timeoutMs`. */
export type BorrowWriteLock = (step: () => void, timeoutMs: number) => Promise<boolean>;

/**
 * The write lock (lent by the application's thread when the engine runs in a worker, else taken on a
 * connection of the primary's own) and the checkpoint that needs it.
 */
export class Checkpointer {
  readonly #ctx: PrimaryContext;
  readonly #o: PrimaryOptions;
  readonly #capture: Capture;
  /** The connection the write lock is taken on when it is not lent. */
  readonly ckpt: SqliteDatabase;
  readonly #borrowWriteLock: BorrowWriteLock | undefined;

  constructor(
    ctx: PrimaryContext,
    capture: Capture,
    ckpt: SqliteDatabase,
    borrowWriteLock: BorrowWriteLock | undefined,
  ) {
    this.#ctx = ctx;
    this.#o = ctx.o;
    this.#capture = capture;
    this.ckpt = ckpt;
    this.#borrowWriteLock = borrowWriteLock;
  }

  /**
   * Runs `step` while no connection can commit: with the write lock lent by the application's thread
   * (engine in a worker), else with the write lock taken on `ckpt`. False when the lock was not had
   * within `timeoutMs`.
   */
  underWriteLock(step: () => void, timeoutMs: number): Promise<boolean> {
    // One at a time: a second request must not wait for the lock synchronously while the first one's
    // loan is on its way (it would block the very event loop that has to receive it).
    const run = this.#lockChain.then(() => this.#underWriteLockNow(step, timeoutMs));
    // The chain only orders the steps; each caller gets its own step's result or error.
    this.#lockChain = run.catch(() => undefined);
    return run;
  }
  #lockChain: Promise<unknown> = Promise.resolve();

  async #underWriteLockNow(step: () => void, timeoutMs: number): Promise<boolean> {
    if (this.#borrowWriteLock && (await this.#borrowWriteLock(step, timeoutMs))) return true;
    const w = this.ckpt;
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
  async checkpoint(): Promise<void> {
    const started = this.#o.clock.now();
    const frames = this.#capture.framesInGeneration;
    if (this.#ctx.db.inTransaction) return;
    this.#capture.captureRound(true); // a fresh pin, so that phase 1 can backfill up to here
    // Phase 1, writers not blocked: backfill what every reader (our pin included) has moved past — nearly
    // the whole WAL — with its copying and fsync. Phase 2 below then holds the write lock only for the
    // few frames committed since.
    this.#ctx.db.pragma('wal_checkpoint(PASSIVE)');
    const done = await this.underWriteLock(() => {
      this.#capture.readNew();
      this.#capture.releaseAllPins();
      // PASSIVE from another connection: nobody can commit while the write lock is held, and every
      // committed frame is captured, so backfilling everything loses nothing.
      this.#ctx.db.pragma('wal_checkpoint(PASSIVE)');
      this.#capture.openPin();
      this.#capture.releasePrevPin();
      // That pin sees a fully backfilled WAL (SQLite gives it no read mark, so it does not hold the WAL):
      // replace it at the next round, once the app has written again.
      this.#capture.pinOpenedAt = -Infinity;
    }, this.#o.checkpointLockTimeoutMs);
    if (done) {
      this.#ctx.emit({ type: 'checkpoint', framesBefore: frames, durationMs: this.#o.clock.now() - started });
    }
  }
}
