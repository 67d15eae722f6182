import type { Clock, Closable, ConnectOptions, Epoch, Logger } from '@gc/core';
import type { SnapshotSource, SnapshotStore } from '@gc/snapshot';
import type { SqliteDatabase } from '@gc/sqlite';
import type { NotLeaderError, UnreplicatedWritesError } from './errors.js';
import type { WalPosition } from './position.js';

// The public option, event and position types of the primary and the replica. Their defaults stay with
// their implementations (`defaultPrimaryOptions` in primary.ts, `defaultReplicaOptions` in replica.ts).

/** Options of {@link createPrimary}. */
export interface PrimaryOptions {
  /** Platform name. */
  platform: string;
  /** App name. */
  app: string;
  /** Path of the SQLite database (WAL mode). */
  path: string;
  /** Fencing epoch of this leadership; must be ≥ every epoch already in the stream. */
  epoch: Epoch;
  /** Create the database (in WAL mode) when the file does not exist. Default true. */
  create: boolean;
  /** How often the WAL is read for new commits, in ms. Default 10. */
  pollIntervalMs: number;
  /**
   * Watch the database's folder (inotify) and capture as soon as the `-wal` file changes. While nothing
   * changes the WAL is then read only every `idlePollIntervalMs` (a fallback for file systems without change
   * events), instead of every `pollIntervalMs`. Default true.
   */
  watchFiles: boolean;
  /** Poll interval while the watch is on and the WAL is idle, in ms. Default 250. */
  idlePollIntervalMs: number;
  /** Run a checkpoint once the WAL holds this many frames. Default 1000. */
  checkpointFrames: number;
  /** Every {@link Primary.write} waits until its commit is in the stream (RPO 0). Default false. */
  synchronous: boolean;
  /** Messages published without waiting for acks. Default 64. */
  publishWindow: number;
  /** Timeout of one publish, in ms. Default 5000. */
  publishTimeoutMs: number;
  /** Default timeout of {@link Primary.sync}, in ms. Default 30000. */
  syncTimeoutMs: number;
  /** `busy_timeout` of the connections the primary opens, in ms. Default 5000. */
  busyTimeoutMs: number;
  /** How long the primary's own checkpoint may wait for the write lock, in ms. Default 50. */
  checkpointLockTimeoutMs: number;
  /** Stream replicas when the stream is created. Default 1. */
  streamReplicas: number;
  /** Upper bound of a message body in bytes; default (0) = the server's max_payload minus 8 KiB for headers. */
  maxChunkBytes: number;
  /**
   * When the stream holds no complete transaction, read the history's tip from the app's newest snapshot
   * (the bucket is opened, never created). Default true.
   */
  snapshotTip: boolean;
  /**
   * What to do with a local database that is not proven to be at the history's tip (behind, diverged, or
   * the stream and snapshots are gone): `refuse` (default) throws {@link NotAtTipError} and publishes
   * nothing; `publish` publishes it in full as the new truth — an operator's decision (`gc app recover`),
   * since it discards whatever the history holds beyond it.
   */
  unprovenState: 'refuse' | 'publish';
  /** The first txid this primary publishes is above this (promotion passes the replica's txid). Default 0. */
  minTxid: number;
  /**
   * How often the whole file is compared with the captured state, in ms (0: never; besides, a changed file
   * header triggers it, and `stop()` does it for databases up to 256 MiB). Default 300000.
   */
  verifyIntervalMs: number;
  /** Injectable clock. */
  clock: Clock;
  /** Logger. */
  logger: Logger;
  /** Listener registered before start, so it also sees the start-up events (`resync`). */
  onEvent: ((e: PrimaryEvent) => void) | undefined;
  /**
   * Run the capture engine (WAL reading, page hashing, checkpoints, publishing, acks) in a worker thread
   * with a NATS connection of its own made from `connect` (plain data: servers, credentials files, TLS
   * files). The application's thread then only commits; `position()` is as of the worker's last report.
   * The connection passed to {@link createPrimary} is not used. Default undefined: in this thread.
   */
  worker: { connect: Partial<ConnectOptions> } | undefined;
}

/** What a primary reports. */
export type PrimaryEvent =
  | { type: 'published'; txid: number; seq: number }
  | { type: 'resync'; txid: number; reason: string }
  | { type: 'wal-restart'; salt1: number; checkpointSeq: number }
  | { type: 'checkpoint'; framesBefore: number; durationMs: number }
  | { type: 'not-leader'; error: NotLeaderError }
  | { type: 'error'; error: Error };

/** Where a primary stands. */
export interface PrimaryPosition extends WalPosition {
  /** Epoch this primary publishes with. */
  leaderEpoch: Epoch;
  /** Last txid captured from the WAL (may not be in the stream yet). */
  capturedTxid: number;
  /** Checksum of the captured state. */
  capturedChecksum: string;
  /** Messages waiting for a stream ack. */
  queuedMessages: number;
}

/** Result of {@link Primary.stop}. */
export interface PrimaryStopResult {
  /** Last position the stream acknowledged. */
  acked: WalPosition;
  /** Transactions captured but never acknowledged by the stream (0 after a clean stop). */
  unreplicatedTransactions: number;
  /** True when the stream refused this primary (another leader). */
  deposed: boolean;
}

/** The primary replicator of one database. See {@link createPrimary}. */
export interface Primary extends Closable {
  /** The primary's own connection to the database, for the app to use (busy_timeout set). */
  readonly db: SqliteDatabase;
  /** Runs `fn` in a write transaction on {@link Primary.db}; with `synchronous` waits until it is in the stream. */
  write<T>(fn: (db: SqliteDatabase) => T): Promise<T>;
  /**
   * Waits until every transaction committed before the call (by any connection or process) is
   * acknowledged by the stream. Resolves with the acknowledged position.
   */
  sync(timeoutMs?: number): Promise<WalPosition>;
  /**
   * Captures what was committed outside {@link Primary.write} (directly on {@link Primary.db}, by an ORM,
   * by another connection) now, instead of at the next poll (`pollIntervalMs`). Call it after such a
   * commit when replication lag matters; it returns at once.
   */
  captureNow(): void;
  /** Current position. */
  position(): PrimaryPosition;
  /**
   * Checkpoints the WAL safely from this process: captures every commit under the write lock, backfills
   * everything (PASSIVE from another connection) and lets the next writer restart the WAL. Use this
   * instead of `PRAGMA wal_checkpoint(FULL|RESTART|TRUNCATE)` on a connection in this same thread: those
   * wait for the replicator's read pin, which cannot move while the thread is blocked (they return busy
   * after `busy_timeout`; nothing is lost). Other processes and threads may checkpoint in any mode.
   */
  checkpoint(): Promise<void>;
  /** Subscribes to events; returns an unsubscribe function. */
  onEvent(listener: (e: PrimaryEvent) => void): () => void;
  /**
   * Writes a copy of the database consistent at an acknowledged txid into `dir` (file `snapshot.db`)
   * without blocking writers, for `@gc/snapshot`.
   */
  snapshotTo(dir: string): Promise<SnapshotSource>;
  /**
   * Stops capturing and publishing: captures what is committed, publishes it if still leader (bounded by
   * `timeoutMs`), closes every connection. The database file then holds the full local state.
   */
  stop(timeoutMs?: number): Promise<PrimaryStopResult>;
  /**
   * Same as {@link Primary.stop} without the result. Idempotent. `closed()` resolves after the first `stop()`
   * or `close()`. A deposed primary (the `not-leader` event) does not close by itself: it refuses writes but
   * keeps its connections until `stop()` or `close()`.
   */
  close(): Promise<void>;
}

/** Options of {@link createReplica}. */
export interface ReplicaOptions {
  /** Platform name. */
  platform: string;
  /** App name. */
  app: string;
  /** Data path of the database (where the app reads it when this node is active). */
  path: string;
  /** Where the replica copy is kept while passive. Default `${path}.replica` (same directory). */
  replicaPath: string;
  /** Snapshot store for bootstrap and re-bootstrap. Without it, a replica can only start from txid 1. */
  snapshots: SnapshotStore | undefined;
  /** At most this many transactions per durable apply batch. Default 512. */
  batchMaxTransactions: number;
  /** At most this many body bytes per batch. Default 64 MiB. */
  batchMaxBytes: number;
  /** Wait before retrying after an error, in ms; doubles while the same failure repeats. Default 500. */
  retryDelayMs: number;
  /** Longest wait between retries of a stalled replica, in ms. Default 30000. */
  maxRetryDelayMs: number;
  /** Stream replicas when the stream is created. Default 1. */
  streamReplicas: number;
  /** Injectable clock. */
  clock: Clock;
  /** Logger. */
  logger: Logger;
  /** Listener registered before start, so it also sees the start-up events (`bootstrap`, `unreplicated-writes`). */
  onEvent: ((e: ReplicaEvent) => void) | undefined;
}

/** What a replica reports. */
export type ReplicaEvent =
  | { type: 'applied'; txid: number; seq: number; transactions: number }
  | { type: 'durable'; txid: number; seq: number }
  | { type: 'bootstrap'; from: 'snapshot' | 'empty' | 'local' | 'adopted'; txid: number; reason?: string }
  | { type: 'unreplicated-writes'; error: UnreplicatedWritesError }
  | { type: 'refused'; error: Error }
  /** The replica cannot follow: the same refusal came back after a bootstrap, or a bootstrap failed. */
  | { type: 'stalled'; reason: string; retryInMs: number }
  /** Following again after a stall. */
  | { type: 'recovered'; txid: number }
  | { type: 'error'; error: Error };

/** What a replica is doing (see {@link Replica.state}). */
export const ReplicaStateName = {
  Starting: 'starting',
  /** Applying the stream (caught up or catching up). */
  Following: 'following',
  /** Replacing its copy from a snapshot (or from nothing, replaying the stream). */
  Bootstrapping: 'bootstrapping',
  /** Cannot follow; retries with backoff. `reason` says why. */
  Stalled: 'stalled',
  Closed: 'closed',
} as const;
/** One of {@link ReplicaStateName}. */
export type ReplicaStateNameValue = (typeof ReplicaStateName)[keyof typeof ReplicaStateName];

/** A replica's state, for health and status. */
export interface ReplicaState {
  state: ReplicaStateNameValue;
  /** Why it is bootstrapping or stalled; the last refusal otherwise (undefined when none). */
  reason: string | undefined;
  /** Wall-clock ms when it entered `state`. */
  sinceMs: number;
  /** Bootstraps since start (the start-up one included). */
  bootstraps: number;
  /** Refused transactions since start. */
  refusals: number;
  /** When stalled: wall-clock ms of the next attempt. */
  retryAtMs: number | undefined;
}

/** Replication lag of a replica. */
export interface ReplicaLag {
  /** Transactions in the stream not yet applied. */
  transactions: number;
  /** Seconds since the oldest unapplied transaction was stored (0 when caught up). */
  seconds: number;
  /** Last complete txid in the stream as far as known. */
  streamTxid: number;
}

/** Durations of the promotion phases, in ms. */
export interface PromotionTimings {
  catchUpMs: number;
  verifyMs: number;
  moveMs: number;
  startMs: number;
  totalMs: number;
}

/** A replica of one app's database. See {@link createReplica}. */
export interface Replica extends Closable {
  /** Path of the replica copy. */
  readonly replicaPath: string;
  /**
   * Position applied: the replica file holds this state (a crash before it is durable redoes it from the stream).
   * It is fsynced and recorded shortly after (the `durable` event); {@link Replica.close} waits for that.
   */
  position(): WalPosition;
  /** Lag against the history's tip (asks the server: stream info, and the last message's headers when behind). */
  lag(): Promise<ReplicaLag>;
  /** What the replica is doing: following, bootstrapping or stalled (with the reason). */
  state(): ReplicaState;
  /** Subscribes to events; returns an unsubscribe function. */
  onEvent(listener: (e: ReplicaEvent) => void): () => void;
  /** Resolves once `txid` is applied. */
  waitForTxid(txid: number, timeoutMs?: number): Promise<WalPosition>;
  /**
   * Resolves once the replica has applied the history's tip as of the call (the stream's last complete
   * transaction; an incomplete last one is skipped), bootstrapping on the way if it must. Rejects with
   * {@link ReplicaStalledError} as soon as the replica stalls, and with `TimeoutError` when it makes no
   * progress for `stallTimeoutMs` or `timeoutMs` passes.
   */
  catchUp(timeoutMs?: number, opts?: { stallTimeoutMs?: number }): Promise<WalPosition>;
  /** Copies the replica (quiescent between batches) into `dir/snapshot.db` with its position. */
  snapshotTo(dir: string): Promise<SnapshotSource>;
  /**
   * Stops consuming (the loop ends, applied state is flushed, files closed); keeps the files. Idempotent. A
   * promotion closes the replica; a stalled one does not close by itself: it retries.
   */
  close(): Promise<void>;
}
