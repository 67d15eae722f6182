export * from './audit.js';
/** Zod schema of a stored audit record ({@link AuditRecord} without `seq`). */
export { auditRecordSchema } from './record.js';
export * from './errors.js';
export * from './types.js';
