// Helpers the replication e2e files share: reads of a replicated database file and an acknowledged writer.
import { openDatabase } from '@gc/snapshot';
import { sleep } from '@gc/testkit';
import type { Primary } from '@gc/wal';
import { expect } from 'vitest';

/** The ids of table `t` in the database at `path` (opened read-only). */
export function ids(path: string): Set<number> {
  const db = openDatabase(path, { readonly: true });
  try {
    return new Set((db.prepare('SELECT id FROM t').all() as Array<{ id: number }>).map((r) => r.id));
  } finally {
    db.close();
  }
}

/** The database at `path` as a new reader sees it now (one read transaction): its logical bytes. */
export function readerBytes(path: string): Buffer {
  const db = openDatabase(path, { readonly: true });
  try {
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    const bytes = db.serialize();
    db.exec('COMMIT');
    return bytes;
  } finally {
    db.close();
  }
}

/** What {@link startAckedWriter} returns. */
export interface AckedWriter {
  /** The ids whose row's `sync()` resolved, in order: the rows promised to survive. */
  readonly acked: number[];
  /** Stops after the write in flight, and waits for it. */
  stop(): Promise<void>;
}

/**
 * Inserts rows 1, 2, … into table `t (id, v)` of `primary`, 5 ms apart, each followed by
 * `sync(syncTimeoutMs)`. A row whose sync() resolved is acknowledged; one whose sync() failed (the
 * fault under test) is not promised.
 */
export function startAckedWriter(primary: Primary, syncTimeoutMs: number): AckedWriter {
  const acked: number[] = [];
  let stopped = false;
  const done = (async () => {
    for (let id = 1; !stopped && id < 100_000; id++) {
      primary.db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(id, `v${id}`);
      try {
        await primary.sync(syncTimeoutMs);
        acked.push(id);
      } catch {
        // not acknowledged: not promised
      }
      await sleep(5);
    }
  })();
  return {
    acked,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** Expects every acknowledged id in table `t` of the database at `path` (`what` names the copy). */
export function expectAcked(path: string, acked: readonly number[], what = ''): void {
  const rows = ids(path);
  for (const id of acked) expect(rows.has(id), `acked row ${id}${what}`).toBe(true);
}
