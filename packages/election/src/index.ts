export { createElection } from './election.js';
export type { CreateElectionOptions } from './election.js';
export {
  defaultElectionOptions,
  resolveElectionOptions,
  MAX_PRIORITY,
  MIN_TTL_MS,
  MIN_SAFETY_RATIO,
} from './options.js';
export { electionConfigSchema } from './schema.js';
export type { ElectionConfig } from './schema.js';
export { ElectionState, LostReason } from './types.js';
export type {
  AcquireVia,
  Election,
  ElectionEventName,
  ElectionEvents,
  ElectionOptions,
  ElectionStateValue,
  LeaderInfo,
  LeaderWatch,
  LeaseRecord,
  LostReasonValue,
  StepDownOptions,
} from './types.js';
export { ElectionErrorCode, LeaseConflictError, StoreUnavailableError } from './errors.js';
export type { ElectionErrorCodeValue } from './errors.js';
export { livenessSubject } from './kv-store.js';
/** Zod schema of the lease record stored under the election key ({@link LeaseRecord}, a public format). */
export { leaseRecordSchema } from './record.js';
// Fencing lives in @gc/core; re-exported so that users of elections need one import.
export {
  createFence,
  memoryEpochStore,
  fileEpochStore,
  parseEpoch,
  fencedKv,
  EPOCH_HEADER,
  FencedError,
  WriteConflictError,
} from '@gc/core';
export type {
  Epoch,
  EpochStore,
  Fence,
  FencedKv,
  FencedKvBucket,
  FencedKvOptions,
  FencedEntry,
} from '@gc/core';
