import { EPOCH_HEADER } from '@gc/core';
import {
  BadPayloadError,
  HandlerError,
  IdempotencyConflictError,
  NoInstanceError,
  NotLeaderError,
  NotOwnerError,
  PayloadTooLargeError,
  ProtocolError,
  RateLimitedError,
  RpcError,
  RpcErrorCode,
  RpcFencedError,
  RpcTimeoutError,
  UnauthorizedError,
  UnknownMethodError,
} from './errors.js';

/** Header names used on the wire (a public contract; see the README). */
export const RpcHeader = {
  /** Leader epoch: the caller's highest seen on leader requests, the leader's own on replies. */
  Epoch: EPOCH_HEADER,
  /** Idempotency key of a call. */
  IdempotencyKey: 'Gc-Rpc-Idempotency-Key',
  /** Set on error replies: the error code; the body is `{ message, data }`. */
  Error: 'Gc-Rpc-Error',
  /** Free-form caller name. */
  Caller: 'Gc-Rpc-Caller',
  /** Bearer token of the auth middleware. */
  Auth: 'Gc-Rpc-Auth',
  /** The routing key of a `{ key }` call, percent-encoded (`encodeURIComponent`). */
  Key: 'Gc-Rpc-Key',
  /**
   * Set on a `to: 'any'` call the client sent to one instance it chose (least outstanding): an instance that
   * is not healthy refuses it unrun (`GC_RPC_NO_INSTANCE`) and the client tries another.
   */
  Balanced: 'Gc-Rpc-Balanced',
} as const;

/** Encodes a routing key for the {@link RpcHeader.Key} header; throws URIError for a lone surrogate. */
export function encodeKeyHeader(key: string): string {
  return encodeURIComponent(key);
}

/** Decodes the {@link RpcHeader.Key} header; undefined when it is malformed. */
export function decodeKeyHeader(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** JSON-encodes a payload; `undefined` is sent as an empty body. Throws on values JSON cannot hold. */
export function encodeJson(value: unknown): Uint8Array {
  if (value === undefined) return EMPTY;
  const s = JSON.stringify(value);
  if (s === undefined) throw new TypeError(`a ${typeof value} cannot be sent as JSON`);
  // Buffer.from uses Node's pooled allocator: cheaper than TextEncoder for small payloads.
  return Buffer.from(s, 'utf8');
}

/** Decodes a JSON body; an empty body is `undefined`. Throws SyntaxError on malformed JSON. */
export function decodeJson(data: Uint8Array): unknown {
  if (data.length === 0) return undefined;
  return JSON.parse(decoder.decode(data)) as unknown;
}

/** The body of an error reply. */
interface WireError {
  message: string;
  data?: Record<string, unknown>;
}

/** Encodes an error for the wire: the code goes into a header, the message and safe details into the body. */
export function encodeError(err: unknown, app: string, method: string): { code: string; body: Uint8Array } {
  const data: Record<string, unknown> = {};
  let message: string;
  // Typed errors about this very call keep their code; the same errors from a nested call the handler
  // made are that handler's failure (HandlerError with the nested code as remoteCode).
  const own =
    (err instanceof RpcError || err instanceof RpcTimeoutError) && err.app === app && err.method === method;
  let code = own ? typedCode(err, data) : undefined;
  if (code === undefined) {
    code = RpcErrorCode.HandlerError;
    const e = err as { code?: unknown; name?: unknown };
    if (typeof e?.code === 'string') data.remoteCode = e.code;
    data.remoteName = typeof e?.name === 'string' ? e.name : 'Error';
  }
  if (err instanceof HandlerError) {
    // A stored or nested handler error: forward the original remote fields unchanged.
    message = err.remoteMessage;
    if (err.remoteCode !== undefined) data.remoteCode = err.remoteCode;
    else delete data.remoteCode;
    data.remoteName = err.remoteName;
  } else if (err instanceof Error) message = err.message;
  else message = String(err);
  const body: WireError = { message, data };
  return { code, body: encoder.encode(JSON.stringify(body)) };
}

/**
 * The wire code of a typed error that keeps its code across the wire, with its details put in `data`;
 * undefined for any other error (it travels as a handler error).
 */
function typedCode(err: unknown, data: Record<string, unknown>): string | undefined {
  if (err instanceof UnknownMethodError) {
    data.known = err.known;
  } else if (err instanceof BadPayloadError) {
    data.issues = err.issues;
  } else if (err instanceof NotLeaderError) {
    data.epoch = err.epoch;
  } else if (err instanceof NotOwnerError) {
    data.nodeId = err.nodeId;
    data.reason = err.reason;
    if (err.partition !== undefined) data.partition = err.partition;
    if (err.revision !== undefined) data.revision = err.revision;
    if (err.detail) data.detail = err.detail;
  } else if (err instanceof RpcTimeoutError) {
    data.timeoutMs = err.timeoutMs;
  } else if (err instanceof PayloadTooLargeError) {
    data.sizeBytes = err.sizeBytes;
    data.maxBytes = err.maxBytes;
  } else if (err instanceof RateLimitedError) {
    data.ratePerSecond = err.ratePerSecond;
  } else if (err instanceof IdempotencyConflictError) {
    data.key = err.key;
  } else if (!(err instanceof UnauthorizedError || err instanceof NoInstanceError)) {
    return undefined;
  }
  return err.code;
}

/** Rebuilds a typed error from an error reply. */
export function decodeError(
  app: string,
  method: string,
  code: string,
  body: Uint8Array,
  timeoutMs: number,
): Error {
  let wire: WireError;
  try {
    wire = JSON.parse(decoder.decode(body)) as WireError;
  } catch (err) {
    return new ProtocolError(app, method, `error reply ${code} with a body that is not JSON`, { cause: err });
  }
  const d = wire.data ?? {};
  const message = typeof wire.message === 'string' ? wire.message : '';
  switch (code) {
    case RpcErrorCode.UnknownMethod:
      return new UnknownMethodError(app, method, Array.isArray(d.known) ? (d.known as string[]) : []);
    case RpcErrorCode.BadPayload: {
      const issues = Array.isArray(d.issues) ? (d.issues as { path: string; message: string }[]) : [];
      return new BadPayloadError(
        app,
        method,
        stripPrefix(message, `bad payload for ${app}.${method}: `),
        issues,
      );
    }
    case RpcErrorCode.NotLeader:
      return new NotLeaderError(
        app,
        method,
        stripPrefix(message, `${app}.${method} refused by a non-leader: `).replace(
          /; the handler did not run.*$/,
          '',
        ),
        typeof d.epoch === 'number' ? d.epoch : undefined,
      );
    case RpcErrorCode.NotOwner: {
      return new NotOwnerError(
        app,
        method,
        typeof d.nodeId === 'string' ? d.nodeId : '?',
        typeof d.reason === 'string' ? d.reason : 'not-owner',
        {
          partition: typeof d.partition === 'number' ? d.partition : undefined,
          revision: typeof d.revision === 'number' ? d.revision : undefined,
          ...(typeof d.detail === 'string' ? { detail: d.detail } : {}),
        },
      );
    }
    case RpcErrorCode.Timeout:
      return new RpcTimeoutError(
        app,
        method,
        typeof d.timeoutMs === 'number' ? d.timeoutMs : timeoutMs,
        'handler',
      );
    case RpcErrorCode.PayloadTooLarge:
      return new PayloadTooLargeError(app, method, 'reply', Number(d.sizeBytes), Number(d.maxBytes));
    case RpcErrorCode.RateLimited:
      return new RateLimitedError(app, method, Number(d.ratePerSecond), 'server');
    case RpcErrorCode.Unauthorized:
      return new UnauthorizedError(app, method, stripPrefix(message, `${app}.${method} refused: `));
    case RpcErrorCode.NoInstance:
      // An instance that refused a balanced `any` call unrun (not healthy): the client tries another.
      return new NoInstanceError(app, method, 'any', { cause: new Error(message) });
    case RpcErrorCode.IdempotencyConflict:
      return new IdempotencyConflictError(app, method, String(d.key));
    case RpcErrorCode.HandlerError:
      return new HandlerError(
        app,
        method,
        message,
        typeof d.remoteCode === 'string' ? d.remoteCode : undefined,
        typeof d.remoteName === 'string' ? d.remoteName : 'Error',
      );
    default:
      return new ProtocolError(app, method, `unknown error code ${code}: ${message}`);
  }
}

function stripPrefix(s: string, prefix: string): string {
  return s.startsWith(prefix) ? s.slice(prefix.length) : s;
}

/** Client-side rebuild of a fenced error (kept here so every wire rule is in one file). */
export function fencedReply(app: string, method: string, epoch: number, highest: number): RpcFencedError {
  return new RpcFencedError(app, method, epoch, highest);
}
