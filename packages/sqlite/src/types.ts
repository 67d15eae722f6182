import type Database from 'better-sqlite3';

/** A better-sqlite3 connection. */
export type SqliteDatabase = Database.Database;

/** Options of `openDatabase`: better-sqlite3's own options. */
export type OpenDatabaseOptions = Database.Options;

/** Page size and size in pages of a database file, from its 100-byte header and its length. */
export interface DatabaseFileInfo {
  /** Page size in bytes. */
  pageSizeBytes: number;
  /** Size in pages (file length / page size, rounded down). */
  pageCount: number;
  /** File length in bytes. */
  sizeBytes: number;
}
