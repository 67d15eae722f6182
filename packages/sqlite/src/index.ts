export { SqliteErrorCode, IntegrityCheckError, NotWalModeError, NotDatabaseError } from './errors.js';
export type { SqliteErrorCodeValue } from './errors.js';
export { openDatabase, assertIntegrity, checkIntegrity } from './sqlite.js';
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
export type { SqliteDatabase, OpenDatabaseOptions, DatabaseFileInfo } from './types.js';
