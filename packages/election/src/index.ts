export { createElection } from './election.js';
export type { CreateElectionOptions } from './election.js';
export * from './options.js';
export * from './schema.js';
export * from './types.js';
export * from './errors.js';
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
