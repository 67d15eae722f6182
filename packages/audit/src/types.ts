import type { Closable, Clock, Epoch, Logger } from '@gc/core';
import type { Registry } from 'prom-client';

/** Severity of an audit record. */
export const AuditSeverity = { Info: 'info', Warn: 'warn', Error: 'error' } as const;
/** One of {@link AuditSeverity}. */
export type AuditSeverityValue = (typeof AuditSeverity)[keyof typeof AuditSeverity];

/**
 * One stored audit record: the stable JSON schema (version 1) of every message on `{platform}._.audit.>`.
 * Fields are only ever added, never renamed or removed.
 */
export interface AuditRecord {
  /** Schema version (1). */
  v: 1;
  /** Unique id (also the `Nats-Msg-Id`, so a retried publish is stored once). */
  id: string;
  /** ISO-8601 wall-clock time on the recording node. */
  time: string;
  /** Node that recorded it. */
  node: string;
  /** Dotted type, for example `election.leader_acquired`, `lock.forced`. Also the subject tail. */
  type: string;
  /** App concerned, if any. */
  app?: string;
  /** Fencing epoch the action was taken under, if any. */
  epoch?: Epoch;
  severity: AuditSeverityValue;
  /** Free-form JSON details. */
  data: unknown;
  /** Stream sequence (on records read back by `query` / `tail`). */
  seq?: number;
}

/** What callers pass to `record()`. */
export interface AuditInput {
  /** Dotted type of letters, digits, `-`, `_` tokens (no wildcards). */
  type: string;
  app?: string;
  epoch?: Epoch;
  /** JSON-serializable details. Default `{}`. */
  data?: unknown;
  /** Default `info`. */
  severity?: AuditSeverityValue;
}

/** Filters of `query` and `tail`. */
export interface AuditFilter {
  /** Type or type pattern (`lock.*`, `election.>`). Default all. */
  type?: string;
  app?: string;
  node?: string;
  severity?: AuditSeverityValue;
}

/** Options of `query`. */
export interface AuditQuery extends AuditFilter {
  /** Oldest time (Date, ms since the Unix epoch or ISO string), by the server's storage time. Default: the stream's start. */
  since?: Date | number | string;
  /** Newest time (inclusive), same forms. Default: now. */
  until?: Date | number | string;
  /** Return at most this many records: the newest ones, oldest first. Default 1000. */
  limit?: number;
}

/** Options of `tail`. */
export interface AuditTailOptions extends AuditFilter {
  /** Start from this time instead of from new records. */
  since?: Date | number | string;
}

/** A live tail of the audit stream: async iterable, `stop()` ends it. */
export interface AuditTail extends AsyncIterable<AuditRecord> {
  stop(): void;
}

/** Counters of one `Audit` instance. */
export interface AuditStats {
  /** Records stored. */
  recorded: number;
  /** Records not stored (see `onError`). */
  failed: number;
  /** Records being published now. */
  pending: number;
}

/** Options of {@link createAudit}. */
export interface AuditOptions {
  /** Platform name; the stream is `{platform}_audit`. Required. */
  platform: string;
  /** Node id written into every record. Required. */
  nodeId: string;
  /** Oldest records are removed after this many ms. Default 30 days. */
  maxAgeMs: number;
  /**
   * Oldest records are removed when the stream exceeds this many bytes (JetStream reserves it from the
   * server's storage); -1 for no size limit. Default 256 MiB.
   */
  maxBytes: number;
  /** Replicas when the stream is created (1, 3 or 5). Default 1. */
  replicas: number;
  /** Publish acknowledgement timeout in ms. Default 5000. */
  publishTimeoutMs: number;
  /** Clock (the record `time`). Default `realClock`. */
  clock: Clock;
  /** Logger: failed records are logged at `error`. Default silent. */
  logger: Logger;
  /** Prometheus registry for `gc_audit_records_total{result}`. Default none. */
  registry?: Registry;
  /** Called with every record that was not stored. Must not throw (a throw is logged). */
  onError?: (err: Error, input: AuditInput) => void;
}

/** The audit trail of one platform, written by one node. */
export interface Audit extends Closable {
  /** `{platform}_audit`. */
  readonly stream: string;
  /**
   * Stores a record. Never throws and never rejects: resolves the stored record, or `undefined` when it
   * was not stored (then it is counted in `stats().failed`, logged, and passed to `onError`). Callers may
   * ignore the promise.
   */
  record(input: AuditInput): Promise<AuditRecord | undefined>;
  /** Records in a time range matching the filters, oldest first (the newest `limit`). */
  query(q?: AuditQuery): Promise<AuditRecord[]>;
  /**
   * New records as they are stored (or from `since`). Resolves once the stream consumer exists: a record
   * stored after the promise resolved is delivered. Rejects with `AuditStoreError` when the consumer cannot
   * be made (server away), `ClosedError` on a closed audit; closing the audit ends every tail.
   */
  tail(opts?: AuditTailOptions): Promise<AuditTail>;
  stats(): AuditStats;
  /** Resolves when every record started so far is stored or failed. */
  flush(): Promise<void>;
  /** Flushes, stops tails. Idempotent. Later `record()` calls fail (counted, not thrown). */
  close(): Promise<void>;
}
