import { closeSync, existsSync, openSync } from 'node:fs';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { ClosedError, TimeoutError, closedSignal, withTimeout, type Clock } from '@gc/core';
import type { SnapshotSource } from '@gc/snapshot';
import { NotWalModeError, formatChecksum, openDatabase, type SqliteDatabase } from '@gc/sqlite';
import { NotLeaderError } from '../errors.js';
import type { WalPosition } from '../position.js';
import { StreamPublisher } from '@gc/core';
import { ensureWalStream, walNames, type WalNames } from '../stream.js';
import type { Primary, PrimaryEvent, PrimaryOptions, PrimaryPosition, PrimaryStopResult } from '../types.js';
import { Capture } from './capture.js';
import { Checkpointer, type BorrowWriteLock } from './checkpoint.js';
import { PrimaryContext } from './context.js';
import { Outbox } from './outbox.js';
import { snapshotAtCommit } from './snapshot.js';
import { resumeFromTip } from './startup.js';
import { FileVerifier } from './verify.js';
import { WalFileWatch } from './watch.js';

/** `stop()` compares the whole file with the captured state for databases up to this size. */
const STOP_VERIFY_MAX_BYTES = 256 << 20;

/** After this many rounds in a row that found work, the file watch is dropped until a round finds none. */
const UNWATCH_AFTER_BUSY_ROUNDS = 5;

/**
 * The capture engine of a primary: composes the capture (capture.ts), the outbox (outbox.ts), the write
 * lock and checkpoints (checkpoint.ts) and the file verification (verify.ts) around one shared context,
 * runs them in rounds (a poll, or at once after a commit) and answers the public API.
 */
class PrimaryImpl implements Primary {
  readonly db: SqliteDatabase;
  readonly #o: PrimaryOptions;
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #ctx: PrimaryContext;
  readonly #outbox: Outbox;
  readonly #capture: Capture;
  readonly #checkpointer: Checkpointer;
  readonly #verifier: FileVerifier;
  #tickTimer: ReturnType<Clock['setTimeout']> | undefined;
  #tickRunning: Promise<void> | undefined;
  #tickAgain = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  /** Set when stop() begins: no new round starts (stop runs the last one itself). */
  #closing = false;
  /** The file watch saw a change while a round was running. */
  #walChanged = false;
  /** Capture rounds run so far (sync() tells by it whether a round captured after it was called). */
  #captureRounds = 0;
  readonly #closedSignal = closedSignal();
  #checkpointWanted = false;

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
    this.#jsm = jsm;
    this.db = db;
    this.#ctx = new PrimaryContext(o, names, db, maxChunk);
    this.#outbox = new Outbox(this.#ctx, publisher, jsm);
    this.#capture = new Capture(this.#ctx, this.#outbox, pins, dbFd);
    this.#checkpointer = new Checkpointer(this.#ctx, this.#capture, ckpt, borrowWriteLock);
    this.#verifier = new FileVerifier(this.#ctx, this.#capture, this.#checkpointer);
    this.#watch = new WalFileWatch(o.path, o.watchFiles, o.clock, o.logger, () => {
      if (this.#stopped || this.#closing) return;
      // During a round: it may have read the file before this change; its end looks again (#afterRound).
      if (this.#tickRunning) {
        this.#walChanged = true;
        return;
      }
      // Only when the next round is an idle poll: otherwise a round is due within pollIntervalMs anyway.
      if (!this.#tickTimer || !this.#idleWait) return;
      this.#cancelTimer();
      this.#schedule(0);
    });
  }

  onEvent(listener: (e: PrimaryEvent) => void): () => void {
    this.#ctx.listeners.add(listener);
    return () => this.#ctx.listeners.delete(listener);
  }

  async start(): Promise<void> {
    const parts = { ctx: this.#ctx, capture: this.#capture, outbox: this.#outbox, verifier: this.#verifier };
    await resumeFromTip(parts, this.#nc, this.#jsm);
    this.#outbox.writeSidecar(true);
    this.#outbox.pump();
    this.#watch.arm();
    this.#schedule(0);
    // Fence before reporting ready: until the new epoch's first message is in the stream, a deposed primary
    // could still append, and its writes would then be the ones replicas keep.
    if (this.#outbox.queue.length) await this.sync();
  }

  #cancelTimer(): void {
    if (this.#tickTimer) this.#o.clock.clearTimeout(this.#tickTimer);
    this.#tickTimer = undefined;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#closing || this.#tickTimer) return;
    this.#tickTimer = this.#o.clock.setTimeout(() => {
      this.#tickTimer = undefined;
      void this.#tick();
    }, delayMs);
  }
  /** The last round found nothing to do: the next one waits for a file change or the idle poll. */
  #idleWait = false;
  readonly #watch: WalFileWatch;
  /** Rounds in a row that found work (see UNWATCH_AFTER_BUSY_ROUNDS). */
  #busyRounds = 0;

  /**
   * Schedules the round after one that has ended. A primary with nothing to do waits for a change to the
   * `-wal` file (a commit by any process, a checkpoint's restart) or the idle poll (`idlePollIntervalMs`);
   * a busy one polls every `pollIntervalMs`, and drops the file watch once it has been busy for
   * UNWATCH_AFTER_BUSY_ROUNDS rounds (see WalFileWatch).
   */
  #afterRound(foundNothing: boolean): void {
    if (this.#stopped) return;
    // This decides when the next round runs: a poll due later (the idle one, when captureNow() ran this
    // round) is replaced.
    this.#cancelTimer();
    this.#idleWait = false;
    if (!foundNothing) {
      if (++this.#busyRounds >= UNWATCH_AFTER_BUSY_ROUNDS) this.#watch.disarm();
      this.#schedule(this.#o.pollIntervalMs);
      return;
    }
    this.#busyRounds = 0;
    // A change seen while the round ran may have come after its read: one more round.
    if (this.#walChanged) return this.#schedule(0);
    // Armed just now: a commit made after this round's read and before the watch raised no event. One more
    // round looks; it finds the watch on and waits.
    if (this.#watch.arm()) return this.#schedule(0);
    this.#idleWait = this.#watch.armed;
    this.#schedule(
      this.#idleWait ? Math.max(this.#o.pollIntervalMs, this.#o.idlePollIntervalMs) : this.#o.pollIntervalMs,
    );
  }

  /** Runs one capture round now (or after the one in progress). */
  #tick(): Promise<void> {
    if (this.#closing && !this.#tickRunning) return Promise.resolve();
    if (this.#tickRunning) {
      this.#tickAgain = true;
      return this.#tickRunning;
    }
    const before = this.#ctx.capturedTxid;
    this.#tickRunning = (async () => {
      // The round starts once the caller's synchronous code has run: commits made back to back (a burst,
      // each followed by captureNow()) are captured in one round and go out in one message and one socket
      // write, instead of the first alone and the rest in a second round after it.
      await Promise.resolve();
      do {
        this.#tickAgain = false;
        this.#walChanged = false;
        if (this.#stopped || this.#closing) break;
        try {
          this.#capture.captureRound();
          this.#captureRounds++;
          // Published first, so the commit's path holds no more than capturing it; then the file header's
          // look for commits made outside the WAL, before a checkpoint of ours could copy a page 1 with
          // the captured change counter over one that tells of them. The await lets nats.js write what was
          // published (it flushes in a microtask queued by the publish) before those checks run.
          this.#outbox.pump();
          await Promise.resolve();
          this.#verifier.checkHeader();
          if (
            !this.#verifier.verifyWanted &&
            this.#o.verifyIntervalMs > 0 &&
            this.#o.clock.now() - this.#verifier.verifiedAt >= this.#o.verifyIntervalMs
          )
            this.#verifier.verifyWanted = 'periodic check';
          if (this.#verifier.verifyWanted && (await this.#verifier.verifyFile(this.#verifier.verifyWanted)))
            this.#verifier.verifyWanted = undefined;
          if (this.#checkpointWanted || this.#capture.framesInGeneration >= this.#o.checkpointFrames) {
            this.#checkpointWanted = false;
            await this.#checkpointer.checkpoint();
          }
          this.#outbox.pump();
        } catch (err) {
          this.#o.logger.error('wal capture failed', { err: String(err) });
          this.#ctx.emit({ type: 'error', error: err as Error });
        }
        await Promise.resolve();
      } while (this.#tickAgain);
    })().finally(() => {
      this.#tickRunning = undefined;
      // A request that arrived after the loop's last check must not wait for the next poll.
      if (this.#tickAgain && !this.#stopped) void this.#tick();
      // Nothing to do: nothing captured, nothing waiting for an ack.
      else this.#afterRound(this.#ctx.capturedTxid === before && this.#outbox.queue.length === 0);
    });
    return this.#tickRunning;
  }

  // ---- public API ----

  async sync(timeoutMs = this.#o.syncTimeoutMs): Promise<WalPosition> {
    if (this.#outbox.deposed) throw this.#outbox.deposed;
    if (this.#stopped) throw new ClosedError('wal primary');
    const rounds = this.#captureRounds;
    await this.#tick();
    // stop() began before a round captured for this call: its own last round does. Its outcome decides.
    if (this.#captureRounds === rounds && this.#stopping) await this.#stopping.catch(() => undefined);
    const deposed = this.#outbox.deposed as NotLeaderError | undefined;
    if (deposed) throw deposed;
    if (this.#captureRounds === rounds && this.#stopping) throw new ClosedError('wal primary');
    const target = this.#ctx.capturedTxid;
    if (this.#outbox.acked.txid < target) {
      // Stopped: nothing more will be acknowledged.
      if (this.#stopped) throw new ClosedError('wal primary');
      await withTimeout(
        new Promise<void>((resolve, reject) =>
          this.#outbox.ackWaiters.push({ txid: target, resolve, reject }),
        ),
        timeoutMs,
        `wal sync to txid ${target}`,
      );
    }
    return { ...this.#outbox.acked };
  }

  async write<T>(fn: (db: SqliteDatabase) => T): Promise<T> {
    if (this.#outbox.deposed) throw this.#outbox.deposed;
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

  position(): PrimaryPosition {
    return {
      ...this.#outbox.acked,
      leaderEpoch: this.#o.epoch,
      capturedTxid: this.#ctx.capturedTxid,
      capturedChecksum: formatChecksum(this.#ctx.hashes.checksum),
      queuedMessages: this.#outbox.queue.length,
    };
  }

  async snapshotTo(dir: string): Promise<SnapshotSource> {
    if (this.#stopped) throw new ClosedError('wal primary');
    await this.#tickRunning;
    return snapshotAtCommit({ ctx: this.#ctx, capture: this.#capture, outbox: this.#outbox }, dir, () =>
      this.sync(),
    );
  }

  async stop(timeoutMs = 5000): Promise<PrimaryStopResult> {
    if (this.#stopping) {
      // A second call waits for the first; the first reports its own failure.
      await this.#stopping.catch(() => undefined);
    } else if (!this.#stopped) {
      await (this.#stopping = this.#stop(timeoutMs));
    }
    // Commits, not messages: a message may carry several.
    const unreplicated = [...new Map(this.#outbox.queue.map((m) => [m.txid, m.meta.txs])).values()].reduce(
      (a, b) => a + b,
      0,
    );
    return {
      acked: { ...this.#outbox.acked },
      unreplicatedTransactions: unreplicated,
      deposed: this.#outbox.deposed !== undefined,
    };
  }

  /** The work of the first {@link stop}: the last capture and publish, then every connection closed. */
  async #stop(timeoutMs: number): Promise<void> {
    try {
      // No round starts from here on (timer, file watch, captureNow, sync): the last one is the one below.
      this.#closing = true;
      this.#cancelTimer();
      while (this.#tickRunning) await this.#tickRunning;
      try {
        if (!this.#outbox.deposed) {
          this.#capture.captureRound();
          this.#captureRounds++;
          // What the stream gets last must be the file's state: checked in full when that is cheap.
          if (this.#ctx.hashes.pageCount * this.#ctx.pageSize <= STOP_VERIFY_MAX_BYTES)
            await this.#verifier.verifyFile('stop');
        }
      } catch (err) {
        this.#ctx.emit({ type: 'error', error: err as Error });
      }
      this.#stopped = true;
      this.#watch.close();
      if (!this.#outbox.deposed && this.#outbox.queue.length) {
        this.#outbox.pump();
        const target = this.#ctx.capturedTxid;
        await withTimeout(
          new Promise<void>((resolve, reject) => {
            if (this.#outbox.acked.txid >= target) resolve();
            else this.#outbox.ackWaiters.push({ txid: target, resolve, reject });
          }),
          timeoutMs,
          'final wal publish',
        ).catch((err: unknown) => {
          if (!(err instanceof TimeoutError) && !(err instanceof NotLeaderError)) throw err;
        });
      }
      this.#outbox.closedHard = true;
      this.#outbox.publisher.close();
      this.#outbox.rejectWaiters(this.#outbox.deposed ?? new ClosedError('wal primary'));
      this.#outbox.writeSidecar(true);
      this.#capture.releaseAllPins();
      for (const d of [...this.#capture.pins, this.#checkpointer.ckpt, this.db]) if (d.open) d.close();
      closeSync(this.#capture.dbFd);
      this.#capture.wal.close();
    } finally {
      this.#closedSignal.resolve();
    }
  }

  async close(): Promise<void> {
    await this.stop();
  }

  closed(): Promise<void> {
    return this.#closedSignal.promise;
  }

  /**
   * A start that failed (its fencing publish refused or timed out): stop every timer, watch and publish at
   * once, without the final round of stop(); the caller closes the connections.
   */
  abandon(): void {
    this.#stopped = true;
    this.#watch.close();
    this.#cancelTimer();
    this.#outbox.closedHard = true;
    this.#outbox.publisher.close();
    this.#outbox.rejectWaiters(this.#outbox.deposed ?? new ClosedError('wal primary'));
    this.#capture.wal.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A connection of the primary's: `busy_timeout` set, no automatic checkpoints (the primary runs them). */
export function openConn(path: string, o: PrimaryOptions): SqliteDatabase {
  const db = openDatabase(path, { fileMustExist: true });
  db.pragma(`busy_timeout = ${o.busyTimeoutMs}`);
  db.pragma('wal_autocheckpoint = 0');
  return db;
}

/** The capture engine in this thread (internal: `createPrimary` and the worker entry). */
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
  let p: PrimaryImpl | undefined;
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
    p = new PrimaryImpl(o, names, publisher, jsm, db, pins, ckpt, maxChunk, borrowWriteLock, dbFd, nc);
    if (o.onEvent) p.onEvent(o.onEvent);
    await p.start();
    return p;
  } catch (err) {
    p?.abandon();
    closeAll();
    throw err;
  }
}
