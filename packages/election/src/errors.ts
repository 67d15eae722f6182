import { GcError, storeFailedMessage } from '@gc/core';

/**
 * Stable error codes of `@gc/election` (on top of `ErrorCode` from `@gc/core`, which it also uses:
 * `GC_INVALID_CONFIG` for unsafe timings, `GC_TIMEOUT`, `GC_CLOSED`, `GC_FENCED`).
 */
export const ElectionErrorCode = {
  /** The lease changed under a compare-and-set (someone else holds or changed it). */
  LeaseConflict: 'GC_ELECTION_LEASE_CONFLICT',
  /** The lease store (KV bucket) could not be reached or answered with an error. */
  StoreUnavailable: 'GC_ELECTION_STORE_UNAVAILABLE',
} as const;
/** One of {@link ElectionErrorCode}. */
export type ElectionErrorCodeValue = (typeof ElectionErrorCode)[keyof typeof ElectionErrorCode];

/** A create/update/delete of the lease lost a compare-and-set: the revision was not the expected one. */
export class LeaseConflictError extends GcError {
  /** The revision the writer expected (0 for a create). */
  readonly expectedRevision: number;

  constructor(key: string, expectedRevision: number, options?: ErrorOptions) {
    super(
      ElectionErrorCode.LeaseConflict,
      `lease ${key} changed (expected revision ${expectedRevision}): another node holds or changed it; re-read the lease and contend again`,
      options,
    );
    this.name = 'LeaseConflictError';
    this.expectedRevision = expectedRevision;
  }
}

/** The KV bucket of the election failed an operation; the election retries on its own. */
export class StoreUnavailableError extends GcError {
  /** The operation that failed (`get`, `create`, `update`, `delete`, `watch`, `open`). */
  readonly op: string;

  constructor(op: string, bucket: string, options?: ErrorOptions) {
    super(
      ElectionErrorCode.StoreUnavailable,
      storeFailedMessage(`election bucket ${bucket}`, op, options),
      options,
    );
    this.name = 'StoreUnavailableError';
    this.op = op;
  }
}
