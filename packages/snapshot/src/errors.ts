import { GcError } from '@gc/core';

/** Stable error codes of `@gc/snapshot`. */
export const SnapshotErrorCode = {
  /** A snapshot's bytes do not match its recorded checksum, size or digest. */
  Corrupt: 'GC_SNAPSHOT_CORRUPT',
  /** A restored database failed `PRAGMA integrity_check`. */
  IntegrityCheckFailed: 'GC_SNAPSHOT_INTEGRITY',
  /** No snapshot exists (or none with the requested name). */
  NotFound: 'GC_SNAPSHOT_NOT_FOUND',
  /** The database is not in WAL mode (journal_mode must be `wal`). */
  NotWalMode: 'GC_SQLITE_NOT_WAL',
  /** A file is not an SQLite database (bad header). */
  NotDatabase: 'GC_SQLITE_NOT_DATABASE',
} as const;
/** One of {@link SnapshotErrorCode}. */
export type SnapshotErrorCodeValue = (typeof SnapshotErrorCode)[keyof typeof SnapshotErrorCode];

/** A snapshot (or a file claimed to be one) failed verification; it was not used. */
export class SnapshotCorruptError extends GcError {
  /** Object name of the snapshot, or the file path. */
  readonly snapshot: string;
  constructor(snapshot: string, reason: string, options?: ErrorOptions) {
    super(
      SnapshotErrorCode.Corrupt,
      `snapshot ${snapshot} is corrupt: ${reason}; it was not used (delete it and take a new snapshot, or restore an older one)`,
      options,
    );
    this.name = 'SnapshotCorruptError';
    this.snapshot = snapshot;
  }
}

/** `PRAGMA integrity_check` reported problems; the database was not moved into place. */
export class IntegrityCheckError extends GcError {
  /** The first lines `integrity_check` returned. */
  readonly problems: string[];
  constructor(path: string, problems: string[]) {
    super(
      SnapshotErrorCode.IntegrityCheckFailed,
      `PRAGMA integrity_check failed for ${path}: ${problems.slice(0, 3).join('; ')}; the file was not used`,
    );
    this.name = 'IntegrityCheckError';
    this.problems = problems;
  }
}

/** No snapshot was found. */
export class SnapshotNotFoundError extends GcError {
  constructor(what: string) {
    super(SnapshotErrorCode.NotFound, `no snapshot found: ${what}`);
    this.name = 'SnapshotNotFoundError';
  }
}

/** The database must be in WAL mode for page-level replication. */
export class NotWalModeError extends GcError {
  readonly path: string;
  readonly journalMode: string;
  constructor(path: string, journalMode: string) {
    super(
      SnapshotErrorCode.NotWalMode,
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
    super(SnapshotErrorCode.NotDatabase, `${path} is not an SQLite database: ${reason}`);
    this.name = 'NotDatabaseError';
    this.path = path;
  }
}
