export { SnapshotErrorCode, SnapshotCorruptError, SnapshotNotFoundError } from './errors.js';
export type { SnapshotErrorCodeValue } from './errors.js';
// The SQLite primitives moved to `@gc/sqlite`; re-exported here so that existing imports keep working.
export { IntegrityCheckError, NotWalModeError, NotDatabaseError } from '@gc/sqlite';
export { openDatabase, assertIntegrity, checkIntegrity } from '@gc/sqlite';
export type { SqliteDatabase, OpenDatabaseOptions } from '@gc/sqlite';
export {
  LOCK_BYTE_OFFSET,
  lockPageNumber,
  pageHash,
  formatChecksum,
  parseChecksum,
  PageHashes,
  headerPageSize,
  databaseFileInfo,
  hashFile,
} from '@gc/sqlite';
export type { DatabaseFileInfo } from '@gc/sqlite';
export {
  createSnapshotStore,
  openSnapshotStore,
  defaultSnapshotStoreOptions,
  defaultSnapshotRetention,
  snapshotName,
} from './store.js';
export { createSnapshotter, defaultSnapshotterOptions } from './snapshotter.js';
export type { Snapshotter, SnapshotterOptions, SnapshotterEvent, SnapshotSource } from './snapshotter.js';
export type {
  SnapshotPosition,
  SnapshotInfo,
  SnapshotProgress,
  SnapshotRetention,
  SnapshotStore,
  SnapshotStoreOptions,
  RestoreOptions,
} from './types.js';
