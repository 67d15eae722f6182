import { FencedError, GcError, TimeoutError } from '@gc/core';

/**
 * Stable error codes of `@gc/rpc`. A code never changes meaning once released; match on `code`,
 * never on message text. Timeouts use the core code `GC_TIMEOUT` and stale-leader replies the core
 * code `GC_FENCED`.
 */
export const RpcErrorCode = {
  /** No instance of the app answers on the subject (unknown app, or every instance is down). */
  NoInstance: 'GC_RPC_NO_INSTANCE',
  /** The app is running but has no handler for the method. */
  UnknownMethod: 'GC_RPC_UNKNOWN_METHOD',
  /** The call or the handler did not finish in time (core code). */
  Timeout: 'GC_TIMEOUT',
  /** The circuit breaker of the target is open: calls fail fast until it half-opens. */
  CircuitOpen: 'GC_RPC_CIRCUIT_OPEN',
  /** The client already has its maximum of calls in flight and its queue is full. */
  BulkheadFull: 'GC_RPC_BULKHEAD_FULL',
  /** The payload is not JSON, or the method's schema refused it. */
  BadPayload: 'GC_RPC_BAD_PAYLOAD',
  /** The request or the reply is larger than the server's `max_payload`. */
  PayloadTooLarge: 'GC_RPC_PAYLOAD_TOO_LARGE',
  /** The handler threw; `remoteCode` and the message are the handler's, the stack stays on the server. */
  HandlerError: 'GC_RPC_HANDLER_ERROR',
  /** A leader call reached an instance that is not (or no longer) the leader. The handler did not run. */
  NotLeader: 'GC_RPC_NOT_LEADER',
  /** A leader reply carried an epoch lower than one the client already saw (core code). */
  Fenced: 'GC_FENCED',
  /** The auth middleware refused the call. */
  Unauthorized: 'GC_RPC_UNAUTHORIZED',
  /** A rate-limit middleware refused the call. */
  RateLimited: 'GC_RPC_RATE_LIMITED',
  /** The same idempotency key was used with a different payload. */
  IdempotencyConflict: 'GC_RPC_IDEMPOTENCY_CONFLICT',
  /** A reply could not be understood (version skew or a foreign responder on the subject). */
  Protocol: 'GC_RPC_PROTOCOL',
  /**
   * A key-routed call reached an instance that does not serve the key (its partition moves or moved). The
   * handler did not run; the client retries, and the route hook holds the call for the new owner.
   */
  NotOwner: 'GC_RPC_NOT_OWNER',
} as const;
/** One of the codes in {@link RpcErrorCode}. */
export type RpcErrorCodeValue = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** Base class of the RPC errors that have their own code. `app` and `method` name the call. */
export class RpcError extends GcError {
  /** The called app. */
  readonly app: string;
  /** The called method. */
  readonly method: string;

  constructor(code: string, app: string, method: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'RpcError';
    this.app = app;
    this.method = method;
  }
}

/** No responder: the app is unknown or none of its instances (or not its leader) is serving. */
export class NoInstanceError extends RpcError {
  /** The routing target that had no responder: `any`, `leader`, `node:<id>`. */
  readonly target: string;

  constructor(app: string, method: string, target: string, options?: ErrorOptions) {
    super(
      RpcErrorCode.NoInstance,
      app,
      method,
      `no instance of app "${app}" answered ${method} (target ${target}): the app is unknown or all its instances are down; check the app name and that it runs`,
      options,
    );
    this.name = 'NoInstanceError';
    this.target = target;
  }
}

/** The app runs but does not handle `method`. */
export class UnknownMethodError extends RpcError {
  /** Methods the answering instance does handle. */
  readonly known: readonly string[];

  constructor(app: string, method: string, known: readonly string[]) {
    super(
      RpcErrorCode.UnknownMethod,
      app,
      method,
      `app "${app}" has no method "${method}" (it handles: ${known.length ? known.join(', ') : 'nothing'})`,
    );
    this.name = 'UnknownMethodError';
    this.known = known;
  }
}

/** A call (one attempt) or a handler exceeded its time limit. Code `GC_TIMEOUT` from core. */
export class RpcTimeoutError extends TimeoutError {
  /** The called app. */
  readonly app: string;
  /** The called method. */
  readonly method: string;
  /** The time limit that passed, in ms. */
  readonly timeoutMs: number;
  /** `call`: no reply in time; `handler`: the server's handler time limit passed. */
  readonly where: 'call' | 'handler';

  constructor(
    app: string,
    method: string,
    timeoutMs: number,
    where: 'call' | 'handler',
    options?: ErrorOptions,
  ) {
    super(
      where === 'call' ? `RPC ${app}.${method}` : `handler of ${app}.${method} on the server`,
      timeoutMs,
      options,
    );
    this.name = 'RpcTimeoutError';
    this.app = app;
    this.method = method;
    this.timeoutMs = timeoutMs;
    this.where = where;
  }
}

/** The circuit breaker of the target is open. */
export class CircuitOpenError extends RpcError {
  /** The target whose circuit is open. */
  readonly target: string;

  constructor(app: string, method: string, target: string, options?: ErrorOptions) {
    super(
      RpcErrorCode.CircuitOpen,
      app,
      method,
      `circuit to app "${app}" (target ${target}) is open after repeated failures; calls fail fast until it half-opens`,
      options,
    );
    this.name = 'CircuitOpenError';
    this.target = target;
  }
}

/** The client's bulkhead (max in flight + queue) is full. */
export class BulkheadFullError extends RpcError {
  constructor(app: string, method: string, maxInFlight: number, maxQueued: number, options?: ErrorOptions) {
    super(
      RpcErrorCode.BulkheadFull,
      app,
      method,
      `too many calls to app "${app}": ${maxInFlight} in flight and ${maxQueued} queued already; slow down or raise bulkhead.maxInFlight`,
      options,
    );
    this.name = 'BulkheadFullError';
  }
}

/** The payload is not valid JSON or does not match the method's schema. */
export class BadPayloadError extends RpcError {
  /** Validation issues: the field path (`items[0].qty`, empty for the root) and what is wrong there. */
  readonly issues: readonly { path: string; message: string }[];

  constructor(
    app: string,
    method: string,
    detail: string,
    issues: readonly { path: string; message: string }[] = [],
    options?: ErrorOptions,
  ) {
    super(RpcErrorCode.BadPayload, app, method, `bad payload for ${app}.${method}: ${detail}`, options);
    this.name = 'BadPayloadError';
    this.issues = issues;
  }
}

/** The request or the reply does not fit in the server's `max_payload`. */
export class PayloadTooLargeError extends RpcError {
  /** Encoded size in bytes (payload plus headers). */
  readonly sizeBytes: number;
  /** The server's `max_payload` in bytes. */
  readonly maxBytes: number;

  constructor(app: string, method: string, what: 'request' | 'reply', sizeBytes: number, maxBytes: number) {
    super(
      RpcErrorCode.PayloadTooLarge,
      app,
      method,
      `${what} of ${app}.${method} is ${sizeBytes} bytes, over the server's max_payload of ${maxBytes} bytes; send less (or a reference to data stored elsewhere)`,
    );
    this.name = 'PayloadTooLargeError';
    this.sizeBytes = sizeBytes;
    this.maxBytes = maxBytes;
  }
}

/** The handler threw. Message and code come from the handler; its stack is not sent. */
export class HandlerError extends RpcError {
  /** The `code` of the error the handler threw, when it had a string code. */
  readonly remoteCode: string | undefined;
  /** The `name` of the error the handler threw. */
  readonly remoteName: string;
  /** The message of the error the handler threw. */
  readonly remoteMessage: string;

  constructor(app: string, method: string, message: string, remoteCode?: string, remoteName = 'Error') {
    super(
      RpcErrorCode.HandlerError,
      app,
      method,
      `handler ${app}.${method} failed${remoteCode ? ` [${remoteCode}]` : ''}: ${message}`,
    );
    this.name = 'HandlerError';
    this.remoteCode = remoteCode;
    this.remoteName = remoteName;
    this.remoteMessage = message;
  }
}

/** A leader call reached an instance that is not the leader (or is behind the caller's epoch). */
export class NotLeaderError extends RpcError {
  /** The epoch of the instance that refused, when it has one. */
  readonly epoch: number | undefined;

  constructor(app: string, method: string, reason: string, epoch?: number) {
    super(
      RpcErrorCode.NotLeader,
      app,
      method,
      `${app}.${method} refused by a non-leader: ${reason}; the handler did not run (retry: the call will reach the new leader)`,
    );
    this.name = 'NotLeaderError';
    this.epoch = epoch;
  }
}

/**
 * A key-routed call reached an instance that does not serve the key now (the `admitKey` hook refused it):
 * its partition is being handed off, has moved, or the instance lost its lease. The handler did not run.
 */
export class NotOwnerError extends RpcError {
  /** The instance that refused. */
  readonly nodeId: string;
  /** The key's partition, when the hook told it. */
  readonly partition: number | undefined;
  /**
   * The revision of the partition's ownership record the refusing instance knew (the route hook waits for
   * a newer one before it routes the call again), when the hook told it.
   */
  readonly revision: number | undefined;
  /** Why: for the ring `moving` (hand-off in progress), `owning` (onOwn runs), `not-owner`, `lease-lost`. */
  readonly reason: string;
  /** More about the refusal, when the hook told it. */
  readonly detail: string | undefined;

  constructor(
    app: string,
    method: string,
    nodeId: string,
    reason: string,
    details: { partition?: number | undefined; revision?: number | undefined; detail?: string } = {},
  ) {
    super(
      RpcErrorCode.NotOwner,
      app,
      method,
      `${app}.${method} refused by node ${nodeId}: it does not serve this key now (${reason}${details.partition === undefined ? '' : `, partition ${details.partition}`}${details.detail ? `: ${details.detail}` : ''}); the handler did not run (retry: the call is routed to the new owner)`,
    );
    this.name = 'NotOwnerError';
    this.nodeId = nodeId;
    this.reason = reason;
    this.partition = details.partition;
    this.revision = details.revision;
    this.detail = details.detail;
  }
}

/** A leader reply carried an epoch lower than one this client already saw. Code `GC_FENCED`. */
export class RpcFencedError extends FencedError {
  /** The called app. */
  readonly app: string;
  /** The called method. */
  readonly method: string;

  constructor(app: string, method: string, epoch: number, highest: number) {
    super(`reply to ${app}.${method} from a deposed leader`, epoch, highest);
    this.name = 'RpcFencedError';
    this.app = app;
    this.method = method;
  }
}

/** The auth middleware refused the call. */
export class UnauthorizedError extends RpcError {
  constructor(app: string, method: string, reason: string) {
    super(RpcErrorCode.Unauthorized, app, method, `${app}.${method} refused: ${reason}`);
    this.name = 'UnauthorizedError';
  }
}

/** The rate-limit middleware refused the call. */
export class RateLimitedError extends RpcError {
  /** Configured rate, in calls per second. */
  readonly ratePerSecond: number;

  constructor(app: string, method: string, ratePerSecond: number, side: 'client' | 'server') {
    super(
      RpcErrorCode.RateLimited,
      app,
      method,
      `${app}.${method} refused by the ${side} rate limit of ${ratePerSecond} calls/s; retry later`,
    );
    this.name = 'RateLimitedError';
    this.ratePerSecond = ratePerSecond;
  }
}

/** The idempotency key was already used for a different payload. */
export class IdempotencyConflictError extends RpcError {
  /** The idempotency key. */
  readonly key: string;

  constructor(app: string, method: string, key: string) {
    super(
      RpcErrorCode.IdempotencyConflict,
      app,
      method,
      `idempotency key ${JSON.stringify(key)} of ${app}.${method} was already used with a different payload; use a new key for a new request`,
    );
    this.name = 'IdempotencyConflictError';
    this.key = key;
  }
}

/** A reply could not be decoded. */
export class ProtocolError extends RpcError {
  constructor(app: string, method: string, detail: string, options?: ErrorOptions) {
    super(RpcErrorCode.Protocol, app, method, `unreadable reply from ${app}.${method}: ${detail}`, options);
    this.name = 'ProtocolError';
  }
}
