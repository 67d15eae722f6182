import { JetStreamApiError } from '@nats-io/jetstream';
import { StreamPublishError } from './publisher.js';
import {
  AuthorizationError,
  NoRespondersError,
  RequestError,
  TimeoutError as NatsTimeoutError,
} from '@nats-io/nats-core';

// NATS errors told apart by their class and the JetStream API's error codes — never by message text, which
// changes between client and server versions.

/** JetStream API error codes gc reacts to (`err_code` of the server's API errors). */
export const JsApiCode = {
  ConsumerNotFound: 10014,
  NoMessageFound: 10037,
  JetStreamNotEnabledForAccount: 10039,
  StreamNameInUse: 10058,
  StreamNotFound: 10059,
  /** A publish whose expected last (subject) sequence did not hold: a CAS that lost. */
  WrongLastSequence: 10071,
  /** A publish that expected a last sequence of a subject the stream holds no message of. */
  WrongLastSequenceUnknown: 10164,
  JetStreamNotEnabled: 10076,
} as const;

/** The errors `err` was caused by, itself first (follows `cause`, bounded). */
function* chain(err: unknown): Generator<unknown> {
  let e: unknown = err;
  for (let i = 0; i < 8 && e !== undefined && e !== null; i++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/**
 * The JetStream API error code of `err` (or of an error it was caused by): a `JetStreamApiError`'s, or a
 * refused `StreamPublisher` publish's; undefined when none.
 */
export function jsApiCode(err: unknown): number | undefined {
  for (const e of chain(err)) {
    if (e instanceof JetStreamApiError) return e.code;
    if (e instanceof StreamPublishError && e.errCode) return e.errCode;
  }
  return undefined;
}

/** A CAS (expected last sequence / revision) that lost: someone else wrote first. */
export function isWrongLastSequence(err: unknown): boolean {
  return jsApiCode(err) === JsApiCode.WrongLastSequence;
}

/**
 * A compare-and-set that lost for either reason the server gives: another write came first (wrong last
 * sequence), or the key it expected has no message (wrong last sequence, unknown).
 */
export function isCasConflict(err: unknown): boolean {
  const code = jsApiCode(err);
  return code === JsApiCode.WrongLastSequence || code === JsApiCode.WrongLastSequenceUnknown;
}

/** The stream (or the KV bucket / object store behind it) does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  return jsApiCode(err) === JsApiCode.StreamNotFound;
}

/** The consumer does not exist. */
export function isConsumerNotFound(err: unknown): boolean {
  return jsApiCode(err) === JsApiCode.ConsumerNotFound;
}

/** Nobody subscribes to the subject (a request to nobody; JetStream not answering on a server without it). */
export function isNoResponders(err: unknown): boolean {
  for (const e of chain(err)) {
    if (e instanceof NoRespondersError) return true;
    if (e instanceof RequestError && e.isNoResponders()) return true;
  }
  return false;
}

/** A NATS request or JetStream operation that timed out. */
export function isNatsTimeout(err: unknown): boolean {
  for (const e of chain(err)) if (e instanceof NatsTimeoutError) return true;
  return false;
}

/** The server refused the credentials or a permission. */
export function isAuthorizationError(err: unknown): boolean {
  for (const e of chain(err)) if (e instanceof AuthorizationError) return true;
  return false;
}

/**
 * Runs `start`, the synchronous start of a NATS request (`nc.request`, a JetStream publish, a KV write),
 * capturing no stack traces. nats.js builds two Error objects up front for every request (a `RequestError`
 * and a `TimeoutError`, kept for async stack traces). Under a deep async call chain, capturing their stacks
 * costs more than the request itself (the largest CPU cost of an RPC call). gc never shows those stacks (failures are classified by type and code), so none is
 * captured. Only the synchronous part runs with the limit lowered: errors made after its first `await`
 * capture their stacks as usual.
 */
export function withoutStacks<T>(start: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return start();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
