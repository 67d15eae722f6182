import { GcError } from '@gc/core';

/**
 * Stable error codes of `@gc/sqlite`. The values are the ones these errors had in `@gc/snapshot`, where
 * they were first defined (`GC_SNAPSHOT_INTEGRITY` included); `SnapshotErrorCode` still lists them.
 */
export const SqliteErrorCode = {
  /** A database failed `PRAGMA integrity_check`. */
  IntegrityCheckFailed: 'GC_SNAPSHOT_INTEGRITY',
  /** The database is not in WAL mode (journal_mode must be `wal`). */
  NotWalMode: 'GC_SQLITE_NOT_WAL',
  /** A file is not an SQLite database (bad header). */
  NotDatabase: 'GC_SQLITE_NOT_DATABASE',
  /** No SQLite driver usable on this Node could be loaded. */
  DriverUnavailable: 'GC_SQLITE_DRIVER',
} as const;
/** One of {@link SqliteErrorCode}. */
export type SqliteErrorCodeValue = (typeof SqliteErrorCode)[keyof typeof SqliteErrorCode];

/** `PRAGMA integrity_check` reported problems; the database was not moved into place. */
export class IntegrityCheckError extends GcError {
  /** The first lines `integrity_check` returned. */
  readonly problems: string[];
  constructor(path: string, problems: string[]) {
    super(
      SqliteErrorCode.IntegrityCheckFailed,
      `PRAGMA integrity_check failed for ${path}: ${problems.slice(0, 3).join('; ')}; the file was not used`,
    );
    this.name = 'IntegrityCheckError';
    this.problems = problems;
  }
}

/** The database must be in WAL mode for page-level replication. */
export class NotWalModeError extends GcError {
  readonly path: string;
  readonly journalMode: string;
  constructor(path: string, journalMode: string) {
    super(
      SqliteErrorCode.NotWalMode,
      `${path} is in journal_mode=${journalMode}, not wal: run "PRAGMA journal_mode=WAL" on it once before replicating; nothing was published`,
    );
    this.name = 'NotWalModeError';
    this.path = path;
    this.journalMode = journalMode;
  }
}

/** A file that should hold an SQLite database does not. */
export class NotDatabaseError extends GcError {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(SqliteErrorCode.NotDatabase, `${path} is not an SQLite database: ${reason}`);
    this.name = 'NotDatabaseError';
    this.path = path;
  }
}

/**
 * No better-sqlite3 build usable on this Node could be loaded (not installed, failed to compile, or the
 * wrong one forced by `GC_SQLITE_DRIVER`). The message names the driver, the Node and what to do.
 */
export class SqliteDriverError extends GcError {
  /** The driver gc tried to load (`better-sqlite3` or `better-sqlite3-napi`). */
  readonly driver: string;
  constructor(driver: string, message: string, cause?: unknown) {
    super(SqliteErrorCode.DriverUnavailable, message, cause === undefined ? undefined : { cause });
    this.name = 'SqliteDriverError';
    this.driver = driver;
  }
}
