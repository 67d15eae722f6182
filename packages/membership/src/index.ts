export {
  createMembership,
  defaultMembershipOptions,
  resolveMembershipOptions,
  validateLabels,
  parseMemberRecord,
  MIN_HEARTBEAT_MS,
  MAX_LABEL_VALUE,
} from './membership.js';
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
