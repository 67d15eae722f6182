export * from './errors.js';
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
export * from './store.js';
export * from './snapshotter.js';
export type * from './types.js';
