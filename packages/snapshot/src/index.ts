export {
  SnapshotErrorCode,
  SnapshotCorruptError,
  IntegrityCheckError,
  SnapshotNotFoundError,
  NotWalModeError,
  NotDatabaseError,
} from './errors.js';
export type { SnapshotErrorCodeValue } from './errors.js';
export { openDatabase, assertIntegrity, checkIntegrity } from './sqlite.js';
export type { SqliteDatabase, OpenDatabaseOptions } from './sqlite.js';
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
} from './checksum.js';
export type { DatabaseFileInfo } from './checksum.js';
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
