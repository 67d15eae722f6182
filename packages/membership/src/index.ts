export { createMembership } from './membership.js';
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
export { MembershipErrorCode, MembershipStoreError } from './errors.js';
export type { MembershipErrorCodeValue } from './errors.js';
export { membershipMetrics } from './metrics.js';
export type { MembershipMetrics } from './metrics.js';
export type {
  Labels,
  LeaveReason,
  Member,
  MemberRecord,
  Membership,
  MembershipEvent,
  MembershipOptions,
  MembershipWatcher,
} from './types.js';
