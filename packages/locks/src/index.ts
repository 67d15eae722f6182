export { createLocks } from './locks.js';
export { defaultLocksOptions, resolveLocksOptions, MIN_TTL_MS, MAX_PERMITS } from './options.js';
export { parseLockRecord } from './records.js';
/** Zod schemas of the lock record read from the bucket ({@link LockRecord}) and of its `released` field. */
export { lockRecordSchema, lockReleaseSchema } from './records.js';
export {
  LockErrorCode,
  NotLockOwnerError,
  LockNotHeldError,
  LockLostError,
  LockStoreError,
  PermitsMismatchError,
  LockTimeoutError,
} from './errors.js';
export type { LockErrorCodeValue } from './errors.js';
export { lockMetrics } from './metrics.js';
export type { LockMetrics } from './metrics.js';
export type {
  AcquireOptions,
  Lease,
  LockEvent,
  LockInfo,
  LockRecord,
  LockRelease,
  Locks,
  LocksOptions,
  Semaphore,
  SemaphoreOptions,
} from './types.js';
