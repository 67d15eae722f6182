import { GcError, storeFailedMessage, TimeoutError } from '@gc/core';

/**
 * Stable error codes of `@gc/locks`, on top of the `@gc/core` codes it also uses: `GC_INVALID_NAME`
 * (bad lock name, {@link InvalidNameError} from core), `GC_INVALID_CONFIG`, `GC_TIMEOUT`
 * ({@link LockTimeoutError}), `GC_CLOSED`.
 */
export const LockErrorCode = {
  /** Release (or refresh) by someone who does not hold the lock. */
  NotOwner: 'GC_LOCK_NOT_OWNER',
  /** The lock is not held by anyone. */
  NotHeld: 'GC_LOCK_NOT_HELD',
  /** A lease this process held was lost (taken over after its TTL, or force-released). */
  Lost: 'GC_LOCK_LOST',
  /** The lock bucket failed an operation (connection, JetStream). */
  StoreUnavailable: 'GC_LOCK_STORE_UNAVAILABLE',
  /** A semaphore was opened with a different number of permits than the one stored. */
  PermitsMismatch: 'GC_LOCK_PERMITS_MISMATCH',
} as const;
/** One of {@link LockErrorCode}. */
export type LockErrorCodeValue = (typeof LockErrorCode)[keyof typeof LockErrorCode];

/** Someone tried to release or refresh a lock that another owner holds. Nothing was changed. */
export class NotLockOwnerError extends GcError {
  /** Lock name (with `.slot` for semaphore permits). */
  readonly lock: string;
  /** Owner that tried. */
  readonly owner: string;
  /** Current holder, or undefined when the lock is free. */
  readonly holder: string | undefined;

  constructor(lock: string, owner: string, holder: string | undefined, detail = '') {
    super(
      LockErrorCode.NotOwner,
      `lock ${lock}: ${owner} cannot release it because ${holder ? `${holder} holds it` : 'it is not held by this owner'}${detail ? ` (${detail})` : ''}; only the holder can release it (an operator can use forceRelease with a reason)`,
    );
    this.name = 'NotLockOwnerError';
    this.lock = lock;
    this.owner = owner;
    this.holder = holder;
  }
}

/** The lock is free: there is nothing to release. */
export class LockNotHeldError extends GcError {
  readonly lock: string;

  constructor(lock: string) {
    super(LockErrorCode.NotHeld, `lock ${lock} is not held by anyone; nothing to release`);
    this.name = 'LockNotHeldError';
    this.lock = lock;
  }
}

/**
 * A lease was lost: another owner took the lock over after the TTL ran out without a successful refresh,
 * or an operator force-released it. Stop touching the protected resource; its fence refuses this epoch.
 */
export class LockLostError extends GcError {
  readonly lock: string;
  readonly epoch: number;
  /** Why: `conflict` (the record changed under us), `deadline` (no refresh within the deadline), `forced`. */
  readonly reason: string;

  constructor(lock: string, epoch: number, reason: string, options?: ErrorOptions) {
    super(
      LockErrorCode.Lost,
      `lock ${lock} (epoch ${epoch}) was lost: ${reason}; stop using the protected resource and acquire again`,
      options,
    );
    this.name = 'LockLostError';
    this.lock = lock;
    this.epoch = epoch;
    this.reason = reason;
  }
}

/** The lock bucket failed an operation; `op` names it. Retrying later is safe. */
export class LockStoreError extends GcError {
  readonly op: string;

  constructor(op: string, bucket: string, options?: ErrorOptions) {
    super(LockErrorCode.StoreUnavailable, storeFailedMessage(`lock bucket ${bucket}`, op, options), options);
    this.name = 'LockStoreError';
    this.op = op;
  }
}

/** A semaphore was opened with `permits` different from the count stored in the bucket. */
export class PermitsMismatchError extends GcError {
  readonly semaphore: string;
  readonly permits: number;
  readonly stored: number;

  constructor(semaphore: string, permits: number, stored: number) {
    super(
      LockErrorCode.PermitsMismatch,
      `semaphore ${semaphore} has ${stored} permits in the bucket but was opened with ${permits}; every user must agree on the count (force-release its permits and delete it to change it)`,
    );
    this.name = 'PermitsMismatchError';
    this.semaphore = semaphore;
    this.permits = permits;
    this.stored = stored;
  }
}

/** A waiting acquire ran out of time. `holders` lists who held the lock (or permits) at the end. */
export class LockTimeoutError extends TimeoutError {
  readonly lock: string;
  readonly holders: string[];

  constructor(lock: string, waitMs: number, holders: string[]) {
    super(`acquire of lock ${lock} (held by ${holders.join(', ') || 'nobody'})`, waitMs);
    this.name = 'LockTimeoutError';
    this.lock = lock;
    this.holders = holders;
  }
}
