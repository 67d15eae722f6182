import { GcError, storeFailedMessage } from '@gc/core';

/**
 * Stable error codes of `@gc/membership`, on top of the `@gc/core` codes it also uses:
 * `GC_INVALID_NAME` (bad node id), `GC_INVALID_CONFIG` (bad options, labels or apps), `GC_CLOSED`.
 */
export const MembershipErrorCode = {
  /** The membership bucket failed an operation (connection, JetStream). */
  StoreUnavailable: 'GC_MEMBERSHIP_STORE_UNAVAILABLE',
} as const;
/** One of {@link MembershipErrorCode}. */
export type MembershipErrorCodeValue = (typeof MembershipErrorCode)[keyof typeof MembershipErrorCode];

/** The membership bucket failed an operation; `op` names it. Heartbeats retry on their own. */
export class MembershipStoreError extends GcError {
  readonly op: string;

  constructor(op: string, bucket: string, options?: ErrorOptions) {
    super(
      MembershipErrorCode.StoreUnavailable,
      storeFailedMessage(`membership bucket ${bucket}`, op, options),
      options,
    );
    this.name = 'MembershipStoreError';
    this.op = op;
  }
}
