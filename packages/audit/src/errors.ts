import { GcError, storeFailedMessage } from '@gc/core';

/**
 * Stable error codes of `@gc/audit`, on top of the `@gc/core` codes it also uses (`GC_INVALID_CONFIG`,
 * `GC_INVALID_NAME`, `GC_CLOSED`).
 */
export const AuditErrorCode = {
  /** A record could not be stored (bad input, too large, not JSON, the stream did not acknowledge). */
  RecordFailed: 'GC_AUDIT_RECORD_FAILED',
  /** The audit stream could not be created, updated or read. */
  StoreUnavailable: 'GC_AUDIT_STORE_UNAVAILABLE',
} as const;
/** One of {@link AuditErrorCode}. */
export type AuditErrorCodeValue = (typeof AuditErrorCode)[keyof typeof AuditErrorCode];

/**
 * A record that was not stored. `record()` never throws it: it is counted, logged and passed to
 * `onError`, so auditing can never break the code being audited.
 */
export class AuditRecordError extends GcError {
  /** The record's type as given. */
  readonly type: string;

  constructor(type: string, reason: string, options?: ErrorOptions) {
    super(
      AuditErrorCode.RecordFailed,
      `audit record ${JSON.stringify(type)} was not stored: ${reason}`,
      options,
    );
    this.name = 'AuditRecordError';
    this.type = type;
  }
}

/** The audit stream failed an operation; `op` names it. */
export class AuditStoreError extends GcError {
  readonly op: string;

  constructor(op: string, stream: string, options?: ErrorOptions) {
    super(
      AuditErrorCode.StoreUnavailable,
      storeFailedMessage(`audit stream ${stream}`, op, options),
      options,
    );
    this.name = 'AuditStoreError';
    this.op = op;
  }
}
