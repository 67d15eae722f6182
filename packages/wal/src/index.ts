export {
  WalErrorCode,
  CorruptMessageError,
  GapError,
  DivergedError,
  UnreplicatedWritesError,
  WrongOwnerError,
  NotLeaderError,
  PromotionError,
  NotAtTipError,
  ReplicaStalledError,
} from './errors.js';
export type { WalErrorCodeValue, NotAtTipKind } from './errors.js';
export { createPrimary, defaultPrimaryOptions } from './primary.js';
export { primarySidecarPath } from './position.js';
export type { Primary, PrimaryOptions, PrimaryEvent, PrimaryPosition, PrimaryStopResult } from './types.js';
export { createReplica, defaultReplicaOptions } from './replica.js';
export { ReplicaStateName } from './types.js';
export type {
  Replica,
  ReplicaOptions,
  ReplicaEvent,
  ReplicaLag,
  ReplicaState,
  ReplicaStateNameValue,
  PromotionTimings,
} from './types.js';
export { promote, demote } from './promote.js';
export type { PromoteOptions, PromoteResult, DemoteResult } from './promote.js';
export type { WalPosition, PositionFile } from './position.js';
export { walNames, ensureWalStream, streamTip, historyTip, trimWalStream, walTrimmer } from './stream.js';
export type { WalNames, StreamTip, HistoryTip, SnapshotLike } from './stream.js';
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
export { replicatedDatabase, ReplicatedDatabase } from './component.js';
export type { ReplicatedDatabaseOptions } from './component.js';
export { replicatedDatabaseConfigSchema } from './schema.js';
export type { ReplicatedDatabaseConfig } from './schema.js';
export type { ReplicationStatus } from './component-status.js';
