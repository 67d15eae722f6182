import { GcError } from '@gc/core';
import { SqliteErrorCode } from '@gc/sqlite';

/** Stable error codes of `@gc/snapshot`. */
export const SnapshotErrorCode = {
  /** A snapshot's bytes do not match its recorded checksum, size or digest. */
  Corrupt: 'GC_SNAPSHOT_CORRUPT',
  /** A restored database failed `PRAGMA integrity_check` (`IntegrityCheckError`, from `@gc/sqlite`). */
  IntegrityCheckFailed: SqliteErrorCode.IntegrityCheckFailed,
  /** No snapshot exists (or none with the requested name). */
  NotFound: 'GC_SNAPSHOT_NOT_FOUND',
  /** The database is not in WAL mode (`NotWalModeError`, from `@gc/sqlite`). */
  NotWalMode: SqliteErrorCode.NotWalMode,
  /** A file is not an SQLite database (`NotDatabaseError`, from `@gc/sqlite`). */
  NotDatabase: SqliteErrorCode.NotDatabase,
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

/** No snapshot was found. */
export class SnapshotNotFoundError extends GcError {
  constructor(what: string) {
    super(SnapshotErrorCode.NotFound, `no snapshot found: ${what}`);
    this.name = 'SnapshotNotFoundError';
  }
}
