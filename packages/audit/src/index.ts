export {
  createAudit,
  defaultAuditOptions,
  resolveAuditOptions,
  validateAuditType,
  parseAuditRecord,
} from './audit.js';
/** Zod schema of a stored audit record ({@link AuditRecord} without `seq`). */
export { auditRecordSchema } from './record.js';
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
