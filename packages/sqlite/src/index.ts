export * from './errors.js';
export { openDatabase, assertIntegrity, checkIntegrity, sqliteDriver } from './sqlite.js';
export type { SqliteDriverInfo, SqliteDriverName } from './sqlite.js';
export * from './checksum.js';
export type * from './types.js';
