export * from './ring.js';
export * from './router.js';
export * from './observer.js';
export * from './options.js';
export { ringConfigSchema } from './schema.js';
export type { RingConfig } from './schema.js';
export * from './hash.js';
export * from './assign.js';
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
export * from './errors.js';
export * from './metrics.js';
export * from './types.js';
// The refusal a non-owner answers with lives in @gc/rpc (it travels on the wire); re-exported for matching.
export { NotOwnerError } from '@gc/rpc';
