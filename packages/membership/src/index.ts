export * from './membership.js';
export {
  defaultMembershipOptions,
  resolveMembershipOptions,
  validateLabels,
  MIN_HEARTBEAT_MS,
  MAX_LABEL_VALUE,
} from './options.js';
export { parseMemberRecord } from './records.js';
/** Zod schema of the member record read from the membership bucket ({@link MemberRecord}). */
export { memberRecordSchema } from './records.js';
export * from './errors.js';
export * from './metrics.js';
export type * from './types.js';
