import { emitAll } from '../listeners.js';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ClosedError, closedSignal, withTimeout } from '@gc/core';
import type { SnapshotSource } from '@gc/snapshot';
import { NotWalModeError, type SqliteDatabase } from '@gc/sqlite';
import type { NotLeaderError } from '../errors.js';
import type { WalPosition } from '../position.js';
import type { Primary, PrimaryEvent, PrimaryOptions, PrimaryPosition, PrimaryStopResult } from '../types.js';
import {
  fromWireError,
  fromWireEvent,
  type FromWorker,
  type ToWorker,
  type WorkerStart,
} from './protocol.js';
import { createLockWord, lendWriteLock } from './write-lock.js';

/**
 * Starts the worker. Built, this file is part of `dist/index.js` and the entry is `dist/worker/entry.js`
 * (its own tsup entry, see tsup.config.ts); when running from source (tests, `@gc/source`) it is
 * `entry.ts` next to this file, loaded through a small bootstrap that registers tsx.
 */
function startWorker(workerData: WorkerStart): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  if (!fromSource) return new Worker(new URL('./worker/entry.js', import.meta.url), { workerData });
  const entry = new URL('./entry.ts', import.meta.url).href;
  const require = createRequire(import.meta.url);
  // require.resolve picks the package's CommonJS build; the worker imports its ES module twin.
  const tsxApi = pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `(async () => {
    const { register } = await import(${JSON.stringify(tsxApi)});
    register();
    await import(${JSON.stringify(entry)});
  })().catch((err) => { setImmediate(() => { throw err; }); });`;
  return new Worker(code, { eval: true, workerData, execArgv: ['--conditions=@gc/source'] });
}

/**
 * A primary whose capture engine (WAL reading, page hashing, checkpoints, publishing and acks) runs in a
 * worker thread with a NATS connection of its own, so that replication costs the application's thread
 * only its commits and a message per {@link Primary.write}.
 */
class WorkerPrimary implements Primary {
  readonly db: SqliteDatabase;
  readonly #o: PrimaryOptions;
  readonly #worker: Worker;
  readonly #listeners = new Set<(e: PrimaryEvent) => void>();
  readonly #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #position: PrimaryPosition;
  #deposed: NotLeaderError | undefined;
  #stopped = false;
  #stopResult: Promise<PrimaryStopResult> | undefined;
  readonly #closedSignal = closedSignal();
  #failure: Error | undefined;
  readonly #lockWord: Int32Array;
  readonly #lender: SqliteDatabase;

  constructor(
    o: PrimaryOptions,
    worker: Worker,
    db: SqliteDatabase,
    lender: SqliteDatabase,
    lockWord: Int32Array,
    position: PrimaryPosition,
  ) {
    this.#o = o;
    this.#worker = worker;
    this.db = db;
    this.#lender = lender;
    this.#lockWord = lockWord;
    this.#position = position;
    worker.on('message', (m: FromWorker) => this.#onMessage(m));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => {
      if (!this.#stopped) this.#fail(new Error(`wal capture worker exited with code ${code}`));
    });
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#o.logger.error('wal capture worker failed', { err: err.message });
    this.#emit({ type: 'error', error: err });
    for (const c of this.#calls.values()) c.reject(err);
    this.#calls.clear();
  }

  #onMessage(m: FromWorker): void {
    if (m.type === 'events') {
      this.#position = m.position;
      for (const w of m.events) {
        const e = fromWireEvent(w);
        if (e.type === 'not-leader') this.#deposed = e.error;
        this.#emit(e);
      }
    } else if (m.type === 'reply') {
      this.#position = m.position;
      const c = this.#calls.get(m.id);
      this.#calls.delete(m.id);
      if (m.ok) c?.resolve(m.value);
      else c?.reject(fromWireError(m.error));
    } else if (m.type === 'log') {
      this.#o.logger[m.level](m.msg, m.fields as Record<string, unknown>);
    } else if (m.type === 'lock') {
      // Between two of the application's tasks: lend the write lock for the engine's short step.
      // The worker is waiting for the answer; a few hundred ms covers a CPU-starved worker thread.
      lendWriteLock(this.#lockWord, this.#lender, Math.max(250, this.#o.checkpointLockTimeoutMs));
    }
  }

  #emit(e: PrimaryEvent): void {
    emitAll(this.#listeners, e, this.#o.logger, 'primary');
  }

  #call<T>(method: 'sync' | 'checkpoint' | 'snapshotTo' | 'stop', arg?: unknown): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ type: 'call', id, method, arg } satisfies ToWorker);
    });
  }

  #check(): void {
    if (this.#deposed) throw this.#deposed;
    if (this.#stopped) throw new ClosedError('wal primary');
    if (this.#failure) throw this.#failure;
  }

  onEvent(listener: (e: PrimaryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async write<T>(fn: (db: SqliteDatabase) => T): Promise<T> {
    this.#check();
    const result = this.db.transaction(fn)(this.db);
    this.#worker.postMessage({ type: 'tick' } satisfies ToWorker);
    if (this.#o.synchronous) await this.sync();
    return result;
  }

  captureNow(): void {
    if (!this.#stopped && !this.#failure) this.#worker.postMessage({ type: 'tick' } satisfies ToWorker);
  }

  async sync(timeoutMs = this.#o.syncTimeoutMs): Promise<WalPosition> {
    this.#check();
    // The worker applies its own timeout; this one only covers a worker that stopped answering.
    return withTimeout(this.#call<WalPosition>('sync', timeoutMs), timeoutMs + 5000, 'wal sync');
  }

  position(): PrimaryPosition {
    return { ...this.#position };
  }

  async checkpoint(): Promise<void> {
    if (this.#stopped) throw new ClosedError('wal primary');
    await this.#call('checkpoint');
  }

  async snapshotTo(dir: string): Promise<SnapshotSource> {
    if (this.#stopped) throw new ClosedError('wal primary');
    return this.#call<SnapshotSource>('snapshotTo', dir);
  }

  stop(timeoutMs = 5000): Promise<PrimaryStopResult> {
    this.#stopResult ??= (async () => {
      let result: PrimaryStopResult | undefined;
      try {
        result = await withTimeout(
          this.#call<PrimaryStopResult>('stop', timeoutMs),
          timeoutMs + 5000,
          'wal primary stop',
        );
      } catch (err) {
        this.#o.logger.warn('wal capture worker did not stop cleanly', { err: String(err) });
      }
      this.#stopped = true;
      try {
        if (this.db.open) this.db.close();
        if (this.#lender.open) this.#lender.close();
        await this.#worker.terminate();
      } finally {
        this.#closedSignal.resolve();
      }
      const p = this.#position;
      return (
        result ?? {
          acked: {
            txid: p.txid,
            seq: p.seq,
            epoch: p.epoch,
            checksum: p.checksum,
            pageSizeBytes: p.pageSizeBytes,
            dbPages: p.dbPages,
          },
          unreplicatedTransactions: Math.max(0, p.capturedTxid - p.txid),
          deposed: this.#deposed !== undefined,
        }
      );
    })();
    return this.#stopResult;
  }

  async close(): Promise<void> {
    await this.stop();
  }

  closed(): Promise<void> {
    return this.#closedSignal.promise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Starts the capture engine in a worker thread and opens the application's connection once it is up. */
export async function createWorkerPrimary(
  o: PrimaryOptions,
  openConn: (path: string) => SqliteDatabase,
): Promise<Primary> {
  const w = o.worker!;
  const { clock: _c, logger, onEvent, worker: _w, ...plain } = o;
  const lockWord = createLockWord();
  const start: WorkerStart = { options: plain, connect: w.connect, logLevel: logger.level, lockWord };
  try {
    structuredClone(start);
  } catch (err) {
    throw new TypeError(
      `wal primary worker: the connection options must be plain data (no functions); ${(err as Error).message}`,
    );
  }
  const worker = startWorker(start);
  const early: FromWorker[] = [];
  const first = await new Promise<FromWorker>((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m.type === 'ready' || m.type === 'failed') {
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(m);
      } else early.push(m);
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  if (first.type === 'failed') {
    await worker.terminate();
    throw fromWireError(first.error);
  }
  if (first.type !== 'ready') throw new Error('internal: unexpected first worker message');
  let db: SqliteDatabase | undefined;
  let lender: SqliteDatabase;
  try {
    db = openConn(o.path);
    const mode = String(db.pragma('journal_mode', { simple: true }));
    if (mode !== 'wal') throw new NotWalModeError(o.path, mode);
    lender = openConn(o.path);
    lender.pragma('busy_timeout = 0'); // never waits: the engine waits for the lock itself instead
  } catch (err) {
    if (db?.open) db.close();
    await worker.terminate();
    throw err;
  }
  const p = new WorkerPrimary({ ...o, logger }, worker, db, lender, lockWord, first.position);
  if (onEvent) p.onEvent(onEvent);
  for (const m of early) {
    if (m.type === 'events') for (const e of m.events) onEvent?.(fromWireEvent(e));
  }
  return p;
}
