export { createRing } from './ring.js';
export { createRingRouter } from './router.js';
export { openRingObserver } from './observer.js';
export {
  defaultRingOptions,
  resolveRingOptions,
  defaultRingRouterOptions,
  MIN_TTL_MS,
  MAX_WEIGHT,
} from './options.js';
export { ringConfigSchema } from './schema.js';
export type { RingConfig } from './schema.js';
export {
  loadHasher,
  loadPartitioner,
  partitionOfKey,
  xxh32,
  DEFAULT_PARTITIONS,
  MIN_PARTITIONS,
  MAX_PARTITIONS,
} from './hash.js';
export type { Partitioner } from './hash.js';
export { planAssignment, planMoves, quotas } from './assign.js';
export type { AssignInput, AssignMember, AssignResult, MovesInput, MovesPlan } from './assign.js';
export {
  ringNames,
  parsePartitionRecord,
  parseMemberRecord,
  parseConfigRecord,
  parseMapRecord,
  parsePinsRecord,
} from './records.js';
export type { RingNames, ConfigRecord, MapRecord, PinsRecord } from './records.js';
/** Zod schemas of the records read from the ring bucket (partition, member, config, map and pins records). */
export {
  ringPartitionRecordSchema,
  ringMemberRecordSchema,
  ringConfigRecordSchema,
  ringMapRecordSchema,
  ringPinsRecordSchema,
} from './records.js';
export {
  RingErrorCode,
  InvalidKeyError,
  UnknownPartitionError,
  UnknownNodeError,
  PartitionCountMismatchError,
  PartitionUnavailableError,
  HoldBufferFullError,
  NodeIdInUseError,
  RingStoreError,
} from './errors.js';
export type { RingErrorCodeValue } from './errors.js';
export { ringMetrics } from './metrics.js';
export type { RingMetrics } from './metrics.js';
export { PartitionState, RebalanceReason } from './types.js';
export type {
  Admission,
  AdmitHook,
  MemberRecord,
  OwnContext,
  PartitionRecord,
  PartitionStateValue,
  RebalanceReasonValue,
  ReleaseContext,
  Ring,
  RingEvent,
  RingInit,
  RingMember,
  RingObserver,
  RingObserverOptions,
  RingOptions,
  RingRouter,
  RingRouterOptions,
  RingSnapshot,
  RingStatus,
  RingWatcher,
} from './types.js';
// The refusal a non-owner answers with lives in @gc/rpc (it travels on the wire); re-exported for matching.
export { NotOwnerError } from '@gc/rpc';
