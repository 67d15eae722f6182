/**
 * Stable error codes. A code never changes meaning once released; scripts and other packages
 * match on `code`, never on message text.
 */
export const ErrorCode = {
  InvalidName: 'GC_INVALID_NAME',
  InvalidConfig: 'GC_INVALID_CONFIG',
  ConnectFailed: 'GC_CONNECT_FAILED',
  AuthFailed: 'GC_AUTH_FAILED',
  JetStreamUnavailable: 'GC_JETSTREAM_UNAVAILABLE',
  ServerTooOld: 'GC_SERVER_TOO_OLD',
  FeatureUnsupported: 'GC_FEATURE_UNSUPPORTED',
  Timeout: 'GC_TIMEOUT',
  Fenced: 'GC_FENCED',
  WriteConflict: 'GC_WRITE_CONFLICT',
  Closed: 'GC_CLOSED',
  Aborted: 'GC_ABORTED',
} as const;
/** One of the stable codes in {@link ErrorCode}. Feature packages add their own codes. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Base class of every error gc throws. Carries a stable `code`; `cause` holds the underlying error.
 */
export class GcError extends Error {
  /** Stable, machine-readable code, for example `GC_INVALID_NAME`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'GcError';
    this.code = code;
  }
}

/**
 * `: <message of options.cause>` when the cause is an `Error`, else `''`: appended to a message so that it
 * says why without the reader unwrapping `cause`.
 */
export function causeSuffix(options?: ErrorOptions): string {
  return options?.cause instanceof Error ? `: ${options.cause.message}` : '';
}

/**
 * The message of an error for an operation a NATS-backed store (KV bucket or stream) failed:
 * `<store>: <op> failed: <cause> (check the NATS connection and that JetStream is up)`.
 */
export function storeFailedMessage(store: string, op: string, options?: ErrorOptions): string {
  return `${store}: ${op} failed${causeSuffix(options)} (check the NATS connection and that JetStream is up)`;
}

/** A platform, app, node or lock name that NATS or gc cannot use. */
export class InvalidNameError extends GcError {
  /** What kind of name it is (`platform`, `app`, `node id`, ...). */
  readonly kind: string;
  /** The name that was refused. */
  readonly value: string;

  constructor(kind: string, value: string, reason: string) {
    super(ErrorCode.InvalidName, `invalid ${kind} name ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidNameError';
    this.kind = kind;
    this.value = value;
  }
}

/** A configuration value that is missing, malformed or unsafe. `path` names the field. */
export class ConfigError extends GcError {
  /** Dotted path of the offending field, for example `apps.orders.election.ttlMs`. */
  readonly path: string;

  constructor(path: string, message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidConfig, path ? `${path}: ${message}` : message, options);
    this.name = 'ConfigError';
    this.path = path;
  }
}

/** The NATS connection could not be made (no server, refused, TLS failure, wrong credentials). */
export class ConnectError extends GcError {
  constructor(
    code: typeof ErrorCode.ConnectFailed | typeof ErrorCode.AuthFailed,
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'ConnectError';
  }
}

/** The server does not have JetStream enabled for this account. */
export class JetStreamUnavailableError extends GcError {
  constructor(server: string, options?: ErrorOptions) {
    super(
      ErrorCode.JetStreamUnavailable,
      `JetStream is not enabled on ${server}: start nats-server with -js (or "jetstream {}" in its config) and make sure the account has JetStream`,
      options,
    );
    this.name = 'JetStreamUnavailableError';
  }
}

/** The server is older than gc (or a requested feature) needs. */
export class ServerTooOldError extends GcError {
  readonly version: string;
  readonly required: string;

  constructor(version: string, required: string, what = 'gc') {
    super(
      ErrorCode.ServerTooOld,
      `nats-server ${version} is too old for ${what}: it needs ${required} or newer (upgrade the server; 2.9 silently ignores per-key TTLs)`,
    );
    this.name = 'ServerTooOldError';
    this.version = version;
    this.required = required;
  }
}

/** A server feature was required but the connected server does not have it. */
export class FeatureUnsupportedError extends GcError {
  readonly feature: string;

  constructor(feature: string, version: string, required: string) {
    super(
      ErrorCode.FeatureUnsupported,
      `the connected nats-server ${version} does not support ${feature} (needs ${required}); upgrade the server or turn the option off`,
    );
    this.name = 'FeatureUnsupportedError';
    this.feature = feature;
  }
}

/** An operation did not finish in time. */
export class TimeoutError extends GcError {
  constructor(what: string, timeoutMs: number, options?: ErrorOptions) {
    super(ErrorCode.Timeout, `${what} did not finish within ${timeoutMs} ms`, options);
    this.name = 'TimeoutError';
  }
}

/**
 * A write carried an epoch lower than one already seen: it comes from a deposed leader and was
 * refused. Whoever gets this must stop acting as leader.
 */
export class FencedError extends GcError {
  readonly epoch: number;
  readonly highest: number;

  constructor(what: string, epoch: number, highest: number) {
    super(
      ErrorCode.Fenced,
      `${what} refused: epoch ${epoch} is older than epoch ${highest} already seen (this node is no longer the leader)`,
    );
    this.name = 'FencedError';
    this.epoch = epoch;
    this.highest = highest;
  }
}

/**
 * A compare-and-set write found another revision than the one it was based on (someone else wrote the key
 * since it was read). Nothing was written; re-read and decide again.
 */
export class WriteConflictError extends GcError {
  /** The key (with its bucket when known). */
  readonly key: string;
  /** The revision the write was based on (0: the key had no value). */
  readonly expectedRevision: number;
  /** The revision found instead, when known. */
  readonly actualRevision: number | undefined;

  constructor(key: string, expectedRevision: number, actualRevision?: number, options?: ErrorOptions) {
    super(
      ErrorCode.WriteConflict,
      `write of ${key} based on revision ${expectedRevision} conflicted${actualRevision === undefined ? '' : ` (the key is at revision ${actualRevision})`}: another write came first; re-read the key and try again`,
      options,
    );
    this.name = 'WriteConflictError';
    this.key = key;
    this.expectedRevision = expectedRevision;
    this.actualRevision = actualRevision;
  }
}

/** The object was closed; create a new one. */
export class ClosedError extends GcError {
  constructor(what: string) {
    super(ErrorCode.Closed, `${what} is closed`);
    this.name = 'ClosedError';
  }
}

/** True when `err` is a {@link GcError}, optionally with the given code. */
export function isGcError(err: unknown, code?: string): err is GcError {
  return err instanceof GcError && (code === undefined || err.code === code);
}
