export * from './errors.js';
export * from './primary.js';
export { primarySidecarPath } from './position.js';
export * from './types.js';
export * from './replica.js';
export * from './promote.js';
export type { WalPosition, PositionFile } from './position.js';
export * from './stream.js';
export { WalHeader, TxKind, encodeTx, encodeBody, parseChunk, bodyPages, TxAssembler } from './wire.js';
export type { TxMeta, TxKindValue, WireChunk, ParsedChunk } from './wire.js';
export {
  readWal,
  parseWalHeader,
  walChecksum,
  cursorAtStart,
  WAL_MAGIC_BE,
  WAL_MAGIC_LE,
  WAL_HEADER_BYTES,
  WAL_FRAME_HEADER_BYTES,
} from './walfile.js';
export type { WalCursor, WalTransaction, WalReadResult } from './walfile.js';
export * from './component.js';
export * from './schema.js';
export type { ReplicationStatus } from './component-status.js';
