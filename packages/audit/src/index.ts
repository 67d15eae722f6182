export {
  createAudit,
  defaultAuditOptions,
  resolveAuditOptions,
  validateAuditType,
  parseAuditRecord,
} from './audit.js';
export { AuditErrorCode, AuditRecordError, AuditStoreError } from './errors.js';
export type { AuditErrorCodeValue } from './errors.js';
export { AuditSeverity } from './types.js';
export type {
  Audit,
  AuditFilter,
  AuditInput,
  AuditOptions,
  AuditQuery,
  AuditRecord,
  AuditSeverityValue,
  AuditStats,
  AuditTail,
  AuditTailOptions,
} from './types.js';
