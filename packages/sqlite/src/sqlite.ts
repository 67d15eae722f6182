import Database from 'better-sqlite3';
import { IntegrityCheckError } from './errors.js';
import type { OpenDatabaseOptions, SqliteDatabase } from './types.js';

/**
 * The one place gc opens an SQLite database. Passes `nativeBinding` from the
 * `GC_SQLITE_NATIVE_BINDING` environment variable when it is set (a separately built addon, for
 * example to run on another Node major), otherwise better-sqlite3 finds its own.
 *
 * @example
 * const db = openDatabase('/data/app.db');
 * db.pragma('journal_mode = WAL');
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): SqliteDatabase {
  const nativeBinding = process.env.GC_SQLITE_NATIVE_BINDING;
  return new Database(path, nativeBinding ? { nativeBinding, ...options } : options);
}

/** Runs `PRAGMA integrity_check` on an open database; throws {@link IntegrityCheckError} unless it says ok. */
export function assertIntegrity(db: SqliteDatabase, path: string): void {
  const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  const problems = rows.map((r) => r.integrity_check).filter((s) => s !== 'ok');
  if (problems.length > 0) throw new IntegrityCheckError(path, problems);
}

/**
 * Opens the file at `path`, runs `PRAGMA integrity_check` and closes it. The file must not be in use
 * by anyone else; opening it may create and remove `-wal`/`-shm` files next to it but does not change
 * its pages (nothing is written).
 */
export function checkIntegrity(path: string): void {
  const db = openDatabase(path, { fileMustExist: true });
  try {
    assertIntegrity(db, path);
  } finally {
    db.close();
  }
}
