import type { SqliteDatabase } from '@gc/sqlite';

// Lending the database's write lock from the application's thread to the capture engine in a worker.
//
// The primary's checkpoint ends with a short step that must hold SQLite's write lock (so that the WAL can
// restart with nothing uncaptured), and so does the start of a snapshot. A worker that asks SQLite for
// the lock while the application commits back to back almost never gets it: SQLite's busy handler
// sleeps 1, 2, 5 … ms between attempts and the application takes the lock again within microseconds of
// releasing it. The WAL then grows past its usual size, each commit extends the file, and with
// `synchronous=FULL` every fsync also has to write the file's new size — the application slows down.
//
// So the worker asks the application's thread instead. That thread runs the request between two of the
// application's tasks (it is a message on its event loop), takes the write lock on a connection of its own
// without waiting, then blocks until the worker says its step is done, and releases the lock. The
// application pays the step's duration once per checkpoint, as it would for SQLite's own
// `wal_autocheckpoint` in its thread. Every transition is a compare-and-swap on one shared word, so a
// request that times out on either side is withdrawn safely: the worker only runs its step in state
// HELD → RUNNING, and the lender only gives the lock back after RUNNING → DONE or after it abandoned a
// HELD the worker never took.

/** `Atomics.waitAsync` (Node ≥ 16; typed in lib es2024, newer than this repo's target). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      this: void,
      a: Int32Array,
      i: number,
      v: number,
      t: number,
    ): { async: false; value: string } | { async: true; value: Promise<string> };
  }
).waitAsync;

/** States of the shared word. */
const IDLE = 0;
const REQUESTED = 1;
const HELD = 2;
const DONE = 3;
const REFUSED = 4;
const ABANDONED = 5;
const RUNNING = 6;

/** How long the lender waits for a step that started, at most (see lendWriteLock). */
const RUNNING_LIMIT_MS = 60_000;

/** Creates the shared word (pass it to the worker in `workerData`). */
export function createLockWord(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

/**
 * Worker side: runs `step` while the application's thread holds the write lock. Resolves false (and
 * `step` did not run) when the lender did not answer within `timeoutMs`, could not take the lock at once,
 * or a previous request is still being wound down; the caller then falls back to taking the lock itself.
 */
export async function borrowWriteLock(
  word: Int32Array,
  ask: () => void,
  step: () => void,
  timeoutMs: number,
): Promise<boolean> {
  if (Atomics.compareExchange(word, 0, IDLE, REQUESTED) !== IDLE) return false;
  ask();
  const w = waitAsync(word, 0, REQUESTED, timeoutMs);
  if (w.async) await w.value;
  // Withdraw if the lender has not answered; it then finds IDLE and does nothing.
  const state = Atomics.compareExchange(word, 0, REQUESTED, IDLE);
  if (state === REQUESTED) return false;
  if (state === REFUSED) {
    Atomics.store(word, 0, IDLE);
    return false;
  }
  if (Atomics.compareExchange(word, 0, HELD, RUNNING) !== HELD) {
    // ABANDONED: the lender gave up waiting and released the lock before we started.
    Atomics.store(word, 0, IDLE);
    return false;
  }
  try {
    step();
  } finally {
    Atomics.store(word, 0, DONE);
    Atomics.notify(word, 0);
  }
  return true;
}

/**
 * Application-thread side: answers one request. Takes the write lock on `conn` without waiting, hands it
 * to the worker and blocks (at most `maxHoldMs` for a worker that never starts; once it has started, until
 * its synchronous step ends — bounded at a minute for a worker thread that died inside it), then releases
 * it.
 */
export function lendWriteLock(word: Int32Array, conn: SqliteDatabase, maxHoldMs: number): void {
  if (Atomics.load(word, 0) !== REQUESTED || !conn.open) return;
  // A few immediate attempts ride out a transient SQLITE_BUSY (a read mark being updated); a writer that
  // really holds the lock (the app inside a transaction, another process) makes the worker wait for the
  // lock itself.
  for (let attempt = 1; ; attempt++) {
    try {
      conn.exec('BEGIN IMMEDIATE');
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || attempt === 3) {
        if (Atomics.compareExchange(word, 0, REQUESTED, REFUSED) === REQUESTED) Atomics.notify(word, 0);
        return;
      }
    }
  }
  try {
    if (Atomics.compareExchange(word, 0, REQUESTED, HELD) !== REQUESTED) return; // withdrawn
    Atomics.notify(word, 0);
    const deadline = performance.now() + maxHoldMs;
    for (;;) {
      const state = Atomics.load(word, 0);
      if (state === DONE) break;
      if (state === HELD) {
        const left = deadline - performance.now();
        if (left <= 0) {
          if (Atomics.compareExchange(word, 0, HELD, ABANDONED) === HELD) return;
          continue; // the worker started in between: wait for it
        }
        Atomics.wait(word, 0, HELD, left);
      } else if (state === RUNNING) {
        // The step is synchronous and takes milliseconds; only a worker thread that died inside it (no
        // `finally` ran) keeps it RUNNING. Give the lock back after a minute rather than never.
        if (performance.now() - deadline > RUNNING_LIMIT_MS) return;
        Atomics.wait(word, 0, RUNNING, 1000);
      } else {
        return;
      }
    }
    Atomics.compareExchange(word, 0, DONE, IDLE);
  } finally {
    conn.exec('ROLLBACK');
  }
}
