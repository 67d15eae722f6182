export { createLocks } from './locks.js';
export { defaultLocksOptions, resolveLocksOptions, MIN_TTL_MS, MAX_PERMITS } from './options.js';
export { parseLockRecord } from './records.js';
/** Zod schemas of the lock record read from the bucket ({@link LockRecord}) and of its `released` field. */
export { lockRecordSchema, lockReleaseSchema } from './records.js';
export * from './errors.js';
export * from './metrics.js';
export type * from './types.js';
