export {
  SqliteErrorCode,
  IntegrityCheckError,
  NotWalModeError,
  NotDatabaseError,
  SqliteDriverError,
} from './errors.js';
export type { SqliteErrorCodeValue } from './errors.js';
export { openDatabase, assertIntegrity, checkIntegrity, sqliteDriver } from './sqlite.js';
export type { SqliteDriverInfo, SqliteDriverName } from './sqlite.js';
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
  readBlockPages,
} from './checksum.js';
export type { SqliteDatabase, OpenDatabaseOptions, DatabaseFileInfo } from './types.js';
