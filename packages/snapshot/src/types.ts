/** Where in the replicated history a snapshot sits. */
export interface SnapshotPosition {
  /** Transaction id the snapshot is consistent at (every transaction up to and including it). */
  txid: number;
  /** WAL stream sequence of the last message of `txid`; replay starts at `seq + 1`. */
  seq: number;
  /** Epoch of the leader that produced `txid`. */
  epoch: number;
  /** Rolling database checksum at `txid` (16 hex digits, see `PageHashes`). */
  checksum: string;
  /** Page size in bytes. */
  pageSizeBytes: number;
  /** Database size in pages. */
  pageCount: number;
}

/** A stored snapshot: its position plus object-store facts. */
export interface SnapshotInfo extends SnapshotPosition {
  /** Object name in the snapshot bucket. */
  name: string;
  /** Size of the database file in bytes. */
  sizeBytes: number;
  /** Wall-clock creation time, ms since the Unix epoch. */
  createdAtMs: number;
  /** Platform and app the snapshot belongs to. */
  platform: string;
  app: string;
}

/** Progress of a long upload or restore. */
export interface SnapshotProgress {
  /** `upload` or `restore`. */
  phase: 'upload' | 'restore' | 'verify';
  /** Bytes done so far. */
  doneBytes: number;
  /** Total bytes. */
  totalBytes: number;
}

/** Retention of snapshots: both limits apply; the newest snapshot is always kept. */
export interface SnapshotRetention {
  /** Keep at most this many snapshots. Default 3. */
  keepCount: number;
  /** Delete snapshots older than this, in ms. Default 7 days. */
  maxAgeMs: number;
}

/** Options of {@link createSnapshotStore}. */
export interface SnapshotStoreOptions {
  /** Platform name (validated). */
  platform: string;
  /** App name (validated). */
  app: string;
  /** Object-store replicas. Default 1. */
  replicas: number;
  /** Object chunk size in bytes. Default 1 MiB (clamped to the server's max payload). */
  chunkSizeBytes: number;
}

/** Options of a restore. */
export interface RestoreOptions {
  /** Snapshot to restore; default the newest that verifies. */
  name?: string;
  /** When `name` is not given and the newest snapshot is corrupt, try older ones. Default true. */
  fallback?: boolean;
  /** Progress callback. */
  onProgress?: (p: SnapshotProgress) => void;
}

/** Snapshots of one app in `{platform}_{app}_snapshots`. */
export interface SnapshotStore {
  /** Bucket name (`{platform}_{app}_snapshots`). */
  readonly bucket: string;
  /**
   * Uploads the database file at `path` (a quiescent copy consistent at `position.txid`). Verifies the
   * file's checksum against `position.checksum` while uploading; on mismatch nothing is kept and
   * {@link SnapshotCorruptError} is thrown.
   */
  put(
    path: string,
    position: SnapshotPosition,
    opts?: { onProgress?: (p: SnapshotProgress) => void },
  ): Promise<SnapshotInfo>;
  /** Every snapshot, oldest first (by txid). */
  list(): Promise<SnapshotInfo[]>;
  /** The newest snapshot, or undefined. */
  latest(): Promise<SnapshotInfo | undefined>;
  /**
   * Restores a snapshot to `targetPath`: downloads to a temp file next to it, verifies the object
   * digest, size, page checksum and `PRAGMA integrity_check`, and only then renames it into place. A
   * corrupt or half-written snapshot is never used.
   */
  restore(targetPath: string, opts?: RestoreOptions): Promise<SnapshotInfo>;
  /** Deletes one snapshot. */
  delete(name: string): Promise<void>;
  /** Applies retention; returns what was deleted and the oldest snapshot kept. */
  prune(
    retention?: Partial<SnapshotRetention>,
  ): Promise<{ deleted: SnapshotInfo[]; oldestKept?: SnapshotInfo }>;
}
