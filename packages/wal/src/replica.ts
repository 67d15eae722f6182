import { emitAll } from './listeners.js';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { fsync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  DeliverPolicy,
  jetstream,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import {
  ClosedError,
  TimeoutError,
  createFence,
  realClock,
  silentLogger,
  withTimeout,
  type Fence,
} from '@gc/core';
import { SnapshotCorruptError, type SnapshotSource } from '@gc/snapshot';
import {
  PageHashes,
  databaseFileInfo,
  formatChecksum,
  hashFile,
  lockPageNumber,
  openDatabase,
  pageHash,
  parseChecksum,
} from '@gc/sqlite';
import {
  CorruptMessageError,
  DivergedError,
  GapError,
  ReplicaStalledError,
  UnreplicatedWritesError,
} from './errors.js';
import {
  fsyncDir,
  primarySidecarPath,
  readPosition,
  writePosition,
  writePositionAsync,
  type WalPosition,
} from './position.js';
import { ensureWalStream, historyTip, streamTip, walNames, type WalNames } from './stream.js';
import { TxAssembler, TxKind, WalHeader, bodyPages, parseChunk, type TxMeta } from './wire.js';
import { readWal, type WalReadResult } from './walfile.js';
import {
  ReplicaStateName,
  type Replica,
  type ReplicaEvent,
  type ReplicaLag,
  type ReplicaOptions,
  type ReplicaState,
  type ReplicaStateNameValue,
} from './types.js';

/** Defaults of {@link ReplicaOptions} (platform, app and path have none). */
export function defaultReplicaOptions(): Omit<ReplicaOptions, 'platform' | 'app' | 'path' | 'replicaPath'> {
  return {
    snapshots: undefined,
    batchMaxTransactions: 512,
    batchMaxBytes: 64 << 20,
    retryDelayMs: 500,
    maxRetryDelayMs: 30_000,
    streamReplicas: 1,
    clock: realClock,
    logger: silentLogger,
    onEvent: undefined,
  };
}

interface ReadyTx {
  meta: TxMeta;
  body: Buffer;
  lastSeq: number;
}

interface JournalHeader {
  position: WalPosition;
  txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; bodyBytes: number }>;
  crc: number;
}

/** The replica's open files (see #openFiles). */
interface ReplicaFiles {
  db: number;
  journal: number;
  /** The #fileEpoch they belong to. */
  epoch: number;
  /** The replica file's length in bytes. */
  size: { bytes: number };
  /** The journal's length in bytes. */
  journalBytes: number;
}

/** The journal is emptied after a flush once it holds this much (see #flush). */
const JOURNAL_KEEP_BYTES = 1 << 20;

const fsyncAsync = (fd: number) =>
  new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

/**
 * Bytes of pulled-but-unread messages all replicas on one connection may have outstanding together: well
 * under the server's per-connection pending limit (64 MiB), so several replicas sharing a connection never
 * make it a slow consumer (which drops deliveries and stalls the ordered consumers).
 */
const PULL_BUDGET_BYTES = 16 << 20;
/** Live replicas per connection (they share {@link PULL_BUDGET_BYTES}). */
const replicasOn = new WeakMap<NatsConnection, number>();

/** Page hashes of a database file overlaid with the committed frames of its WAL (what a reader sees). */
function hashWithWal(path: string, wal: WalReadResult): PageHashes {
  const pageSize = wal.header!.pageSizeBytes;
  const dbPages = wal.transactions.at(-1)!.dbSizePages;
  const hashes = hashFile(path, { pageSizeBytes: pageSize, pageCount: dbPages });
  const lock = lockPageNumber(pageSize);
  for (const tx of wal.transactions)
    for (const [p, page] of tx.pages)
      if (p <= dbPages && p !== lock) hashes.set(p, pageHash(p, page, pageSize));
  hashes.resize(dbPages);
  return hashes;
}

/**
 * Deletes an ordered consumer on the server once its iterator stopped: nats.js leaves it to expire after
 * its inactive threshold (5 minutes), so every restart of a consume loop (a refusal, a bootstrap, a failed
 * promotion) would leave one behind — enough of them and the server refuses new consumers.
 */
function dropConsumer(consumer: { delete(): Promise<boolean> }): void {
  consumer.delete().catch(() => undefined); // gone already, or the server is away: it expires by itself
}

/** The stream sequence a refusal is about, for telling causes apart. */
function refusalSeq(e: Error): number | string {
  return (e as { seq?: number }).seq ?? e.message;
}

class ReplicaImpl implements Replica {
  readonly replicaPath: string;
  readonly #o: ReplicaOptions;
  readonly #names: WalNames;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #listeners = new Set<(e: ReplicaEvent) => void>();
  readonly #posPath: string;
  readonly #journalPath: string;
  #hashes = new PageHashes();
  #pos: WalPosition = {
    txid: 0,
    seq: 0,
    epoch: 0,
    checksum: formatChecksum(0n),
    pageSizeBytes: 0,
    dbPages: 0,
  };
  #fence: Fence = createFence();
  #closed = false;
  #loop: Promise<void> | undefined;
  #messages: ConsumerMessages | undefined;
  #batch: ReadyTx[] = [];
  #batchBytes = 0;
  #applyLock: Promise<unknown> = Promise.resolve();
  #waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  readonly #pullMessages: () => number;
  #state: ReplicaState;
  #bootstraps = 0;
  #refusals = 0;
  /**
   * The refusal the last bootstrap was for (error class @ stream seq), the newest snapshot then, and the
   * refused message's seq; cleared once the replica gets past it.
   */
  #stuck: { key: string; reason: string; seq: number; snapshotTxid: number } | undefined;
  /** Consecutive failures of the consume loop (refusals, bootstraps and errors alike). */
  #failures = 0;
  #lastErrorMessage: string | undefined;
  /** Monotonic ms of the last applied batch or completed bootstrap. */
  #progressAt = 0;
  /** Creation time of the stream the position's sequences refer to (undefined: not known). */
  #streamCreated: string | undefined;
  /** Set after a rebase: messages at or below the position's txid are skipped until the first one after it. */
  #skipApplied = false;
  /** A `stalled` event went out and no `recovered` since. */
  #stallReported = false;
  /** A bootstrap still to do (it failed at start). */
  #pendingBootstrap: string | undefined;
  /** Monotonic ms since when the replica has been behind the stream (undefined: caught up). */
  #behindSince: number | undefined;

  constructor(
    o: ReplicaOptions,
    names: WalNames,
    js: JetStreamClient,
    jsm: JetStreamManager,
    pullMessages: () => number,
  ) {
    this.#pullMessages = pullMessages;
    this.#o = o;
    this.#names = names;
    this.#js = js;
    this.#jsm = jsm;
    this.replicaPath = o.replicaPath;
    this.#posPath = `${o.replicaPath}.gc-position.json`;
    this.#journalPath = `${o.replicaPath}.gc-journal`;
    this.#state = {
      state: ReplicaStateName.Starting,
      reason: undefined,
      sinceMs: o.clock.wallNow(),
      bootstraps: 0,
      refusals: 0,
      retryAtMs: undefined,
    };
    this.#progressAt = o.clock.now();
  }

  state(): ReplicaState {
    return { ...this.#state, bootstraps: this.#bootstraps, refusals: this.#refusals };
  }

  #setState(state: ReplicaStateNameValue, reason?: string, retryAtMs?: number): void {
    if (this.#state.state !== state || this.#state.reason !== reason) {
      this.#state = {
        ...this.#state,
        state,
        reason,
        sinceMs: this.#o.clock.wallNow(),
        retryAtMs,
      };
    } else this.#state.retryAtMs = retryAtMs;
    this.#notify();
  }

  /** Goes (or stays) stalled for `reason`; returns how long to wait before the next attempt. */
  #stall(reason: string): number {
    const wait = Math.min(
      this.#o.maxRetryDelayMs,
      this.#o.retryDelayMs * 2 ** Math.min(16, Math.max(0, this.#failures - 1)),
    );
    const first = this.#state.state !== ReplicaStateName.Stalled || this.#state.reason !== reason;
    this.#setState(ReplicaStateName.Stalled, reason, this.#o.clock.wallNow() + wait);
    if (first) {
      this.#stallReported = true;
      this.#o.logger.error('replica stalled', { reason, retryInMs: wait });
      this.#emit({ type: 'stalled', reason, retryInMs: wait });
    }
    return wait;
  }

  #emit(e: ReplicaEvent): void {
    emitAll(this.#listeners, e, this.#o.logger, 'replica');
  }

  onEvent(listener: (e: ReplicaEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  position(): WalPosition {
    return { ...this.#pos };
  }

  #notify(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  #waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.#waiters.push({ check, resolve })),
      timeoutMs,
      what,
    );
  }

  // ---- startup ----

  async start(): Promise<void> {
    // Ownership first: refuse before touching anything.
    readPosition(this.#posPath, this.#names.platform, this.#names.app);
    readPosition(primarySidecarPath(this.#o.path), this.#names.platform, this.#names.app);
    await this.#adoptDataPath();
    try {
      await this.#loadOrBootstrap();
    } catch (err) {
      // A bootstrap that cannot finish now (server, snapshot store) is retried by the consume loop, with
      // backoff and a stalled state, instead of failing the start.
      this.#o.logger.warn('replica bootstrap failed; retrying', { err: String(err) });
      this.#emit({ type: 'error', error: err as Error });
      this.#pendingBootstrap = `start-up bootstrap failed: ${(err as Error).message}`;
    }
    this.#loop = this.#run();
  }

  /** A database at the data path is a former primary's: adopt it if the stream has its exact state. */
  async #adoptDataPath(): Promise<void> {
    const path = this.#o.path;
    if (!existsSync(path)) return;
    const db = openDatabase(path, { fileMustExist: true });
    db.close(); // recovers and checkpoints a leftover -wal into the file, then removes it
    // A WAL left after that close means another process still has the database open (the close was not
    // the last one, so it neither checkpointed nor removed it): the state is the file plus its WAL.
    const wal = readWal(`${path}-wal`, undefined);
    const inUse = wal.transactions.length > 0;
    const local = inUse ? hashWithWal(path, wal) : hashFile(path);
    const sidecar = readPosition(primarySidecarPath(path), this.#names.platform, this.#names.app);
    const found = await this.#findState(local.checksum, local.pageCount, sidecar?.seq ?? 0);
    if (found && inUse) {
      // Replicated, so nothing is lost, but it cannot be adopted under a process that writes it: set aside
      // (that process keeps its open file) and the replica starts from its own copy or a bootstrap.
      const aside = `${path}.in-use-${this.#o.clock.wallNow()}`;
      for (const ext of ['', '-wal', '-shm'])
        if (existsSync(`${path}${ext}`)) renameSync(`${path}${ext}`, `${aside}${ext}`);
      rmSync(primarySidecarPath(path), { force: true });
      this.#o.logger.warn('the database at the data path is open in another process; set aside', { aside });
      return;
    }
    if (!found && !inUse) {
      const tip = await historyTip(this.#jsm, this.#names, this.#o.snapshots);
      if (tip.source === 'none' || tip.source === 'lost') {
        // No replicated history to prove it against (a new app adopting an existing database, or a stream
        // and snapshots deleted): this node's copy is kept — as its replica, claiming the txid it last
        // published — and not set aside. It is not proven either: a promotion refuses to publish it as a
        // continuation of a lost history unless an operator decides to (`gc app recover`).
        this.#removeReplicaFiles();
        renameSync(path, this.replicaPath);
        this.#pos = {
          txid: sidecar?.txid ?? 0,
          seq: 0,
          epoch: sidecar?.epoch ?? 0,
          checksum: formatChecksum(local.checksum),
          pageSizeBytes: local.pageCount ? databaseFileInfo(this.replicaPath).pageSizeBytes : 0,
          dbPages: local.pageCount,
        };
        writePosition(this.#posPath, this.#sidecar());
        rmSync(primarySidecarPath(path), { force: true });
        fsyncDir(dirname(this.replicaPath));
        this.#emit({
          type: 'bootstrap',
          from: 'adopted',
          txid: this.#pos.txid,
          reason: `no replicated history to prove it against (the ${tip.source === 'none' ? 'stream holds nothing' : 'stream was emptied'} and there is no snapshot): kept as this node's copy, unproven`,
        });
        return;
      }
    }
    if (found) {
      this.#removeReplicaFiles();
      renameSync(path, this.replicaPath);
      this.#pos = found;
      writePosition(this.#posPath, this.#sidecar());
      rmSync(primarySidecarPath(path), { force: true });
      fsyncDir(dirname(this.replicaPath));
      this.#emit({ type: 'bootstrap', from: 'adopted', txid: found.txid });
      return;
    }
    const saved = `${path}.unreplicated-${this.#o.clock.wallNow()}`;
    // The copy is kept whole: its WAL goes with it when a process still holding the file kept the close
    // above from checkpointing it.
    renameSync(path, saved);
    for (const ext of ['-wal', '-shm'])
      if (existsSync(`${path}${ext}`)) renameSync(`${path}${ext}`, `${saved}${ext}`);
    rmSync(primarySidecarPath(path), { force: true });
    const error = new UnreplicatedWritesError(
      path,
      saved,
      formatChecksum(local.checksum),
      sidecar?.txid ?? 0,
    );
    this.#o.logger.error('unreplicated writes detected', { err: error.message });
    this.#emit({ type: 'unreplicated-writes', error });
  }

  /** Scans the stream headers from `fromSeq` for a complete transaction whose after-state is `checksum`. */
  async #findState(checksum: bigint, pages: number, fromSeq: number): Promise<WalPosition | undefined> {
    const info = await this.#jsm.streams.info(this.#names.stream);
    const last = info.state.last_seq;
    if (last === 0) return checksum === 0n ? { ...this.#pos } : undefined;
    const start = Math.max(info.state.first_seq, fromSeq || info.state.first_seq);
    // The stream may have been trimmed past this state (it is kept only above the oldest snapshot):
    // then a snapshot at exactly this state proves it was replicated.
    if (info.state.messages === 0 || start > last) return this.#findSnapshotState(checksum, pages);
    const consumer = await this.#js.consumers.get(this.#names.stream, {
      filter_subjects: this.#names.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: start,
      headers_only: true,
    });
    let found: WalPosition | undefined;
    const iter = await consumer.consume({ max_messages: 1000 });
    try {
      for await (const m of iter) {
        const h = m.headers;
        const c = /^(\d+)\/(\d+)$/.exec(h?.get(WalHeader.Chunk) ?? '');
        if (
          c &&
          Number(c[1]) === Number(c[2]) - 1 &&
          parseChecksum(h?.get(WalHeader.After)) === checksum &&
          Number(h?.get(WalHeader.DbPages)) === pages
        ) {
          found = {
            txid: Number(h!.get(WalHeader.Txid)),
            seq: m.seq,
            epoch: Number(h!.get(WalHeader.Epoch)),
            checksum: formatChecksum(checksum),
            pageSizeBytes: Number(h!.get(WalHeader.PageSize)),
            dbPages: pages,
          };
        }
        if (m.seq >= last) break;
      }
    } finally {
      iter.stop();
      dropConsumer(consumer);
    }
    return found ?? this.#findSnapshotState(checksum, pages);
  }

  /** A stored snapshot whose state is exactly `checksum` / `pages`, as a position; undefined when none. */
  async #findSnapshotState(checksum: bigint, pages: number): Promise<WalPosition | undefined> {
    const list = this.#o.snapshots ? await this.#o.snapshots.list() : [];
    const snap = list.reverse().find((x) => parseChecksum(x.checksum) === checksum && x.pageCount === pages);
    return snap
      ? {
          txid: snap.txid,
          seq: snap.seq,
          epoch: snap.epoch,
          checksum: snap.checksum,
          pageSizeBytes: snap.pageSizeBytes,
          dbPages: pages,
        }
      : undefined;
  }

  #removeReplicaFiles(): void {
    for (const f of [
      this.replicaPath,
      this.#posPath,
      this.#journalPath,
      `${this.replicaPath}-wal`,
      `${this.replicaPath}-shm`,
    ]) {
      rmSync(f, { force: true });
    }
  }

  #sidecar() {
    return {
      ...this.#pos,
      platform: this.#names.platform,
      app: this.#names.app,
      role: 'replica' as const,
      updatedAtMs: this.#o.clock.wallNow(),
      ...(this.#streamCreated ? { streamCreated: this.#streamCreated } : {}),
    };
  }

  async #loadOrBootstrap(): Promise<void> {
    const pos = readPosition(this.#posPath, this.#names.platform, this.#names.app);
    if (pos && existsSync(this.replicaPath)) {
      this.#pos = pos;
      this.#streamCreated = pos.streamCreated;
      this.#recoverJournal();
      const hashes = hashFile(this.replicaPath, {
        pageSizeBytes: this.#pos.pageSizeBytes || undefined,
        pageCount: this.#pos.dbPages,
      });
      if (formatChecksum(hashes.checksum) === this.#pos.checksum) {
        this.#hashes = hashes;
        this.#fence = createFence();
        this.#fence.check(Math.max(1, this.#pos.epoch), 'replica start');
        this.#bootstraps++;
        this.#emit({ type: 'bootstrap', from: 'local', txid: this.#pos.txid });
        return;
      }
      const err = new DivergedError(
        `replica ${this.replicaPath} at txid ${pos.txid}`,
        formatChecksum(hashes.checksum),
        pos.checksum,
      );
      this.#emit({ type: 'refused', error: err });
      await this.#bootstrap(err.message);
      return;
    }
    await this.#bootstrap(pos ? 'replica file missing' : 'no replica yet');
  }

  /**
   * Replaces the replica with the newest snapshot that verifies, or with an empty database when there is
   * none or none verifies (the stream is then replayed from its start: it works when the stream still
   * begins with txid 1 or a `full` message; otherwise the first message is a gap and the replica stalls).
   */
  async #bootstrap(reason: string, keepAside = false): Promise<void> {
    this.#setState(ReplicaStateName.Bootstrapping, reason);
    this.#fileEpoch++;
    // A flush in flight may still record the old file's position or fsync its descriptors: let it end
    // (it skips the rest once it sees the new epoch), then close them.
    await this.#flushing;
    this.#closeFiles();
    if (existsSync(this.replicaPath)) {
      const aside = `${this.replicaPath}.${keepAside ? 'superseded' : 'refused'}-${this.#o.clock.wallNow()}`;
      renameSync(this.replicaPath, aside);
      if (!keepAside) rmSync(aside, { force: true });
      else {
        // The stream now holds a history that does not contain this copy (it went back below its txid, as
        // after an operator published another node's copy): the copy may hold commits nobody else has.
        // Kept for inspection, never merged.
        const error = new UnreplicatedWritesError(
          this.replicaPath,
          aside,
          this.#pos.checksum,
          this.#pos.txid,
        );
        this.#o.logger.warn('replica copy superseded by another history; kept aside', { err: error.message });
        this.#emit({ type: 'unreplicated-writes', error });
      }
    }
    this.#removeReplicaFiles();
    this.#fence = createFence();
    // The snapshot's sequences may refer to an older stream: checked (and rebased) when consuming starts.
    this.#streamCreated = undefined;
    this.#bootstraps++;
    const latest = this.#o.snapshots ? await this.#o.snapshots.latest() : undefined;
    let fallback: string | undefined;
    if (this.#o.snapshots && latest) {
      try {
        const info = await this.#o.snapshots.restore(this.replicaPath);
        this.#pos = {
          txid: info.txid,
          seq: info.seq,
          epoch: info.epoch,
          checksum: info.checksum,
          pageSizeBytes: info.pageSizeBytes,
          dbPages: info.pageCount,
        };
        this.#hashes = hashFile(this.replicaPath, {
          pageSizeBytes: info.pageSizeBytes,
          pageCount: info.pageCount,
        });
        if (this.#pos.epoch > 0) this.#fence.check(this.#pos.epoch, 'snapshot');
        this.#emit({ type: 'bootstrap', from: 'snapshot', txid: info.txid, reason });
        writePosition(this.#posPath, this.#sidecar());
        fsyncDir(dirname(this.replicaPath));
        this.#progress(); // a snapshot past the refused message ends a stall
        return;
      } catch (err) {
        if (!(err instanceof SnapshotCorruptError)) throw err;
        // Every snapshot failed verification: the stream may still hold the whole history.
        fallback = `every snapshot failed verification (${err.message}): replaying the stream from its start`;
        this.#o.logger.error('replica bootstrap: no snapshot verified', { err: err.message });
        this.#emit({ type: 'error', error: err });
      }
    }
    writeFileSync(this.replicaPath, Buffer.alloc(0));
    this.#pos = { txid: 0, seq: 0, epoch: 0, checksum: formatChecksum(0n), pageSizeBytes: 0, dbPages: 0 };
    this.#hashes = new PageHashes();
    this.#emit({
      type: 'bootstrap',
      from: 'empty',
      txid: 0,
      reason: fallback ? `${reason}; ${fallback}` : reason,
    });
    writePosition(this.#posPath, this.#sidecar());
    fsyncDir(dirname(this.replicaPath));
    this.#progressAt = this.#o.clock.now();
  }

  // ---- consuming ----

  /**
   * Consumes until closed. A refused transaction (gap, divergence, corrupt message) leads to one bootstrap
   * per cause: when the same refusal comes back after it with nothing applied in between, bootstrapping
   * again would not help — the replica is `stalled` (event, state, health) and retries with backoff (a
   * newer snapshot may have appeared). Other failures (server, network) are retried with backoff too, and
   * stall the replica once they repeat.
   */
  async #run(): Promise<void> {
    while (!this.#closed) {
      let waitMs = this.#o.retryDelayMs;
      try {
        if (this.#pendingBootstrap) {
          const reason = this.#pendingBootstrap;
          await this.#locked(() => this.#bootstrap(reason));
          this.#pendingBootstrap = undefined;
        }
        const stuck = this.#stuck;
        if (stuck && this.#state.state === ReplicaStateName.Stalled) {
          // Stalled on a refusal a bootstrap did not cure: only a newer snapshot can (the refused message
          // stays in the stream). Without one, reading the stream again just confirms the refusal.
          const latest = await this.#o.snapshots?.latest();
          if (latest && latest.txid > stuck.snapshotTxid) {
            stuck.snapshotTxid = latest.txid;
            await this.#locked(() =>
              this.#bootstrap(`a newer snapshot (txid ${latest.txid}) after: ${stuck.reason}`),
            );
          }
        }
        if (this.#state.state !== ReplicaStateName.Stalled) this.#setState(ReplicaStateName.Following);
        await this.#consume();
      } catch (err) {
        if (this.#closed) break;
        const e = err as Error;
        this.#batch = [];
        this.#batchBytes = 0;
        this.#failures++;
        if (e instanceof GapError || e instanceof DivergedError || e instanceof CorruptMessageError) {
          const key = `${e.name}@${refusalSeq(e)}`;
          this.#refusals++;
          if (this.#stuck?.key === key) {
            // The same refusal after a bootstrap: bootstrapping again from the same snapshot would not
            // help. Stalled (reported once), retried with backoff when a newer snapshot appears.
            waitMs = this.#stall(`${e.message} (again after a bootstrap; waiting for a newer snapshot)`);
          } else {
            this.#o.logger.warn('replica refused stream data', { err: e.message });
            this.#emit({ type: 'refused', error: e });
            const latest = await this.#o.snapshots?.latest().catch(() => undefined);
            this.#stuck = {
              key,
              reason: e.message,
              seq: typeof (e as { seq?: unknown }).seq === 'number' ? (e as { seq: number }).seq : 0,
              snapshotTxid: latest?.txid ?? -1,
            };
            // A history that went back below this copy's txid (not a plain gap ahead of it) replaced ours.
            const backwards =
              (e instanceof GapError && e.gotTxid <= e.expectedTxid - 1) || e instanceof DivergedError;
            try {
              await this.#locked(() => this.#bootstrap(e.message, backwards && this.#pos.txid > 0));
              this.#setState(ReplicaStateName.Following);
            } catch (be) {
              this.#emit({ type: 'error', error: be as Error });
              waitMs = this.#stall(`bootstrap failed: ${(be as Error).message}`);
            }
          }
        } else {
          if (e.message !== this.#lastErrorMessage) this.#emit({ type: 'error', error: e });
          this.#lastErrorMessage = e.message;
          waitMs =
            this.#failures >= 3
              ? this.#stall(e.message)
              : Math.min(this.#o.maxRetryDelayMs, this.#o.retryDelayMs * 2 ** (this.#failures - 1));
        }
        await this.#o.clock.sleep(waitMs).catch(() => undefined);
      }
    }
  }

  /**
   * A batch was applied. A stall on a refusal ends only once the replica got past the refused message (a
   * replay from a bootstrap that ends at the same refusal is not progress).
   */
  #progress(): void {
    this.#progressAt = this.#o.clock.now();
    if (this.#stuck && this.#pos.seq < this.#stuck.seq) return;
    this.#stuck = undefined;
    this.#failures = 0;
    this.#lastErrorMessage = undefined;
    if (this.#state.state !== ReplicaStateName.Following) this.#setState(ReplicaStateName.Following);
    if (this.#stallReported) {
      this.#stallReported = false;
      this.#emit({ type: 'recovered', txid: this.#pos.txid });
    }
  }

  /**
   * Checks the position's stream sequence against the stream as it is now. Sequences are only a cursor —
   * every transaction is checked by txid and checksum — but a stream deleted and made anew, or a snapshot
   * taken on an older stream, gives them another meaning: then the replica reads from the stream's first
   * message and skips what it already holds. A replica the stream was trimmed past, with nothing left to
   * read, bootstraps at once instead of waiting for a write that may never come.
   */
  async #alignWithStream(): Promise<void> {
    const info = await this.#jsm.streams.info(this.#names.stream);
    const { first_seq: first, last_seq: last, messages } = info.state;
    let why: string | undefined;
    if (this.#streamCreated !== undefined && this.#streamCreated !== info.created)
      why = 'the WAL stream was deleted and made anew';
    else if (this.#pos.seq > last)
      why = `the stream ends at seq ${last}, before this replica's seq ${this.#pos.seq}`;
    else if (this.#pos.txid > 0 && this.#pos.seq >= first && this.#pos.seq <= last) {
      const m = await this.#jsm.streams
        .getMessage(this.#names.stream, { seq: this.#pos.seq })
        .catch(() => null);
      const txid = Number(m?.header.get(WalHeader.Txid));
      if (m && txid !== this.#pos.txid)
        why = `stream seq ${this.#pos.seq} holds txid ${txid}, not ${this.#pos.txid}`;
    }
    this.#streamCreated = info.created;
    if (why) {
      this.#o.logger.warn('replica position rebased on the stream', { why, txid: this.#pos.txid });
      this.#pos = { ...this.#pos, seq: Math.max(0, first - 1) };
      this.#skipApplied = true;
      return;
    }
    if (messages === 0 && last > this.#pos.seq) {
      throw new GapError(
        this.#pos.txid + 1,
        NaN,
        last,
        `the stream was trimmed past this replica (seq ${this.#pos.seq}) and holds nothing after it`,
      );
    }
  }

  async #consume(): Promise<void> {
    await this.#alignWithStream();
    const startSeq = this.#pos.seq + 1;
    const consumer = await this.#js.consumers.get(this.#names.stream, {
      filter_subjects: this.#names.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
    });
    const assembler = new TxAssembler();
    // Bound a pull to a share of ~16 MiB of the largest possible messages per connection: the server's
    // per-connection pending limit (64 MiB) must hold every replica's pull on it, or deliveries are
    // dropped as a slow consumer and the ordered consumer stalls and resets.
    const iter = await consumer.consume({ max_messages: this.#pullMessages() });
    this.#messages = iter;
    if (this.#closed) iter.stop();
    try {
      for await (const m of iter) {
        if (this.#closed) break;
        const chunk = parseChunk(m.headers, m.data, m.seq);
        if (m.info.pending > 0) this.#behindSince ??= this.#o.clock.now();
        const tx = assembler.add(chunk, m.data, m.seq);
        if (tx && this.#skipApplied) {
          // After a rebase: what the replica already holds is skipped, up to the first transaction after it.
          if (tx.meta.txid <= this.#pos.txid && tx.meta.kind !== TxKind.Full) {
            this.#pos = { ...this.#pos, seq: m.seq };
            continue;
          }
          this.#skipApplied = false;
        }
        if (tx) {
          this.#batch.push({ meta: tx.meta, body: tx.body, lastSeq: tx.lastSeq });
          this.#batchBytes += tx.body.length;
        }
        if (
          this.#batch.length > 0 &&
          (m.info.pending === 0 ||
            this.#batch.length >= this.#o.batchMaxTransactions ||
            this.#batchBytes >= this.#o.batchMaxBytes ||
            tx?.meta.kind === TxKind.Full)
        ) {
          const batch = this.#batch;
          this.#batch = [];
          this.#batchBytes = 0;
          await this.#locked(() => this.#applyBatch(batch));
          this.#progress();
        }
        if (m.info.pending === 0 && this.#batch.length === 0) this.#behindSince = undefined;
        this.#notify();
      }
    } finally {
      iter.stop();
      this.#messages = undefined;
      dropConsumer(consumer);
    }
  }

  #locked<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#applyLock.then(fn, fn);
    this.#applyLock = run.catch(() => undefined);
    return run;
  }

  /**
   * Checks every transaction against the state it must start from, then makes the valid prefix durable
   * (journal, pages, fsync, position). Throws for the first invalid one after applying those before it.
   */
  async #applyBatch(batch: ReadyTx[]): Promise<void> {
    const overlay = new Map<number, bigint>();
    const get = (p: number) => (overlay.has(p) ? overlay.get(p)! : this.#hashes.get(p));
    let checksum = this.#hashes.checksum;
    let pages = this.#hashes.pageCount;
    let txid = this.#pos.txid;
    let epoch = this.#pos.epoch;
    const valid: ReadyTx[] = [];
    let failure: Error | undefined;
    for (const tx of batch) {
      const m = tx.meta;
      try {
        // A full message replaces the whole state: it is a valid next step from any earlier txid (a replica
        // behind a trim point, or after a deliberate recovery, continues from it). Everything else must
        // continue exactly where the replica is.
        if (m.kind === TxKind.Full ? m.txid <= txid : m.txid - m.txs + 1 !== txid + 1)
          throw new GapError(txid + 1, m.txid - m.txs + 1, tx.lastSeq);
        if (m.kind === TxKind.Full && valid.length > 0) break; // applied on its own, below
        if (m.epoch < epoch) {
          throw new DivergedError(
            `txid ${m.txid} carries epoch ${m.epoch} below ${epoch}`,
            formatChecksum(checksum),
            formatChecksum(m.before),
            tx.lastSeq,
          );
        }
        if (m.kind === TxKind.Full) {
          overlay.clear();
          for (let p = 1; p <= pages; p++) overlay.set(p, 0n);
          checksum = 0n;
        } else if (m.before !== checksum) {
          throw new DivergedError(
            `txid ${m.txid} at stream seq ${tx.lastSeq}`,
            formatChecksum(checksum),
            formatChecksum(m.before),
            tx.lastSeq,
          );
        }
        const lock = m.pageSizeBytes ? lockPageNumber(m.pageSizeBytes) : 0;
        for (const [p, page] of bodyPages(tx.body, m.pageSizeBytes)) {
          if (p < 1 || p > m.dbPages || p === lock)
            throw new CorruptMessageError(tx.lastSeq, `page number ${p} outside 1..${m.dbPages}`);
          const h = pageHash(p, page, m.pageSizeBytes);
          checksum ^= get(p) ^ h;
          overlay.set(p, h);
        }
        for (let p = m.dbPages + 1; p <= pages; p++) {
          checksum ^= get(p);
          overlay.set(p, 0n);
        }
        pages = m.dbPages;
        if (checksum !== m.after) {
          throw new CorruptMessageError(
            tx.lastSeq,
            `pages of txid ${m.txid} give checksum ${formatChecksum(checksum)}, header says ${formatChecksum(m.after)}`,
          );
        }
        this.#fence.check(m.epoch, `wal txid ${m.txid}`);
        txid = m.txid;
        epoch = m.epoch;
        valid.push(tx);
        if (m.kind === TxKind.Full) break;
      } catch (err) {
        failure = err as Error;
        break;
      }
    }
    if (valid.length > 0) this.#commit(valid, overlay, pages);
    if (!failure && valid.length < batch.length) {
      // A full transaction ends a batch; apply the rest on their own.
      await this.#applyBatch(batch.slice(valid.length));
      return;
    }
    if (failure) throw failure;
  }

  /** Writes a checked batch: journal record, then pages; `hashes` and `dbPages` are the state after it. */
  #commit(txs: ReadyTx[], hashes: Map<number, bigint>, dbPages: number): void {
    const last = txs.at(-1)!;
    const next: WalPosition = {
      txid: last.meta.txid,
      seq: last.lastSeq,
      epoch: last.meta.epoch,
      checksum: formatChecksum(last.meta.after),
      pageSizeBytes: txs.reduce((s, t) => t.meta.pageSizeBytes || s, this.#pos.pageSizeBytes),
      dbPages: last.meta.dbPages,
    };
    const header: JournalHeader = {
      position: next,
      txs: txs.map((t) => ({
        kind: t.meta.kind,
        dbPages: t.meta.dbPages,
        pageSizeBytes: t.meta.pageSizeBytes,
        bodyBytes: t.body.length,
      })),
      crc: 0,
    };
    let crc = 0;
    for (const t of txs) crc = crc32(t.body, crc);
    header.crc = crc;
    const hb = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(hb.length);
    // The journal record is appended before the pages are written, so a process crash in the middle is
    // redone from it (the page cache keeps both). Once the pages are written the state is applied: visible
    // to readers of the file, reported (`applied`) and what position() says. Durability follows in the
    // background (#flush): one fsync of database and journal for everything applied meanwhile, then the
    // position file; the journal keeps every batch since it was last emptied (past 1 MiB), so a crash
    // before any of that still redoes them all. An OS crash that loses unsynced pages leaves an older
    // position whose checksum no longer matches the file: the replica re-bootstraps — never wrong, and the
    // apply path never waits for the disk. Files stay open while the replica runs: no open/close per
    // batch, and no close() that would drop the POSIX locks of a SQLite connection this process may hold
    // on the same file.
    const files = this.#openFiles();
    files.journalBytes += writevSync(files.journal, [len, hb, ...txs.map((t) => t.body)]);
    this.#journalGen++;
    this.#writePages(
      files.db,
      txs.map((t) => ({
        kind: t.meta.kind,
        dbPages: t.meta.dbPages,
        pageSizeBytes: t.meta.pageSizeBytes,
        body: t.body,
      })),
      files.size,
    );
    // The hashes were computed while checking the batch.
    if (txs[0]!.meta.kind === TxKind.Full) this.#hashes = new PageHashes();
    for (const [p, h] of hashes) this.#hashes.set(p, h);
    this.#hashes.resize(dbPages);
    this.#pos = next;
    this.#emit({ type: 'applied', txid: next.txid, seq: next.seq, transactions: txs.length });
    void this.#flush();
  }

  /**
   * Makes the applied position durable: fsync of database and journal, then the position file (not
   * fsynced: a lost one is older, does not match the file's checksum and only costs a re-bootstrap),
   * then removal of the journal unless a later batch wrote a new one. At most one runs; requests made
   * meanwhile are covered by the next round. Resolves when everything applied so far is durable.
   */
  #flush(): Promise<void> {
    this.#flushAgain = true;
    this.#flushing ??= (async () => {
      try {
        while (this.#flushAgain) {
          this.#flushAgain = false;
          const files = this.#files;
          if (!files) continue;
          const target = { ...this.#pos };
          const gen = this.#journalGen;
          await fsyncAsync(files.db);
          await fsyncAsync(files.journal);
          // Re-bootstrapped meanwhile: the new file has its own position (#bootstrap waits for this loop).
          if (files.epoch !== this.#fileEpoch) continue;
          await writePositionAsync(this.#posPath, { ...this.#sidecar(), ...target });
          // Nothing applied since `target`: every record in the journal is covered by the position now. The
          // journal is emptied only once it is large (a truncation is a metadata write on this thread);
          // until then a crash redoes records the position already covers, in order — the same pages
          // again, ending at the last record's state.
          if (gen === this.#journalGen && files === this.#files && files.journalBytes >= JOURNAL_KEEP_BYTES) {
            ftruncateSync(files.journal, 0);
            files.journalBytes = 0;
          }
          this.#emit({ type: 'durable', txid: target.txid, seq: target.seq });
        }
      } catch (err) {
        this.#emit({ type: 'error', error: err as Error });
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  /** The replica file and the journal, open for appending; reopened after a bootstrap replaced them. */
  #openFiles(): ReplicaFiles {
    if (this.#files && this.#files.epoch === this.#fileEpoch) return this.#files;
    this.#closeFiles();
    const db = openSync(this.replicaPath, 'r+');
    let journal: number;
    try {
      journal = openSync(this.#journalPath, 'a');
    } catch (err) {
      closeSync(db);
      throw err;
    }
    this.#files = {
      db,
      journal,
      epoch: this.#fileEpoch,
      size: { bytes: fstatSync(db).size },
      journalBytes: fstatSync(journal).size,
    };
    return this.#files;
  }
  #files: ReplicaFiles | undefined;
  #flushing: Promise<void> | undefined;
  #flushAgain = false;

  /** Closes the open files (callers first make sure no flush uses them). */
  #closeFiles(): void {
    const f = this.#files;
    this.#files = undefined;
    if (!f) return;
    closeSync(f.db);
    closeSync(f.journal);
  }

  #journalGen = 0;
  /** Bumped whenever the replica file is replaced (bootstrap), so a flush in flight does not record it. */
  #fileEpoch = 0;

  /**
   * Writes the batch's pages and sets the file's size. `size` tracks the file's length in bytes so that
   * an unchanged size costs no `ftruncate` (undefined: always set it).
   */
  #writePages(
    fd: number,
    txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; body: Buffer }>,
    size?: { bytes: number },
  ): void {
    for (const t of txs) {
      if (t.kind === TxKind.Full) {
        ftruncateSync(fd, 0);
        if (size) size.bytes = 0;
      }
      for (const [p, page] of bodyPages(t.body, t.pageSizeBytes)) {
        const at = (p - 1) * t.pageSizeBytes;
        writeSync(fd, page, 0, page.length, at);
        if (size) size.bytes = Math.max(size.bytes, at + page.length);
      }
      const want = t.dbPages * t.pageSizeBytes;
      if (t.pageSizeBytes && (!size || size.bytes !== want)) {
        ftruncateSync(fd, want);
        if (size) size.bytes = want;
      }
    }
  }

  /** Redoes a journal left by a crash between journal and position (idempotent); drops a torn one. */
  #recoverJournal(): void {
    if (!existsSync(this.#journalPath)) return;
    const raw = readFileSync(this.#journalPath);
    // Records in order, one per batch applied since the journal was last emptied (so some may be older than
    // the recorded position: redoing them in order ends at the last one's state); the first torn one ends
    // it (its pages were never written: a batch's record is complete before its pages are touched).
    let off = 0;
    let redone = 0;
    const fd = openSync(this.replicaPath, 'r+');
    try {
      while (off < raw.length) {
        let next: number;
        let header: JournalHeader;
        let txs: Array<{ kind: string; dbPages: number; pageSizeBytes: number; body: Buffer }>;
        try {
          const hl = raw.readUInt32BE(off);
          header = JSON.parse(raw.subarray(off + 4, off + 4 + hl).toString()) as JournalHeader;
          let at = off + 4 + hl;
          txs = header.txs.map((t) => {
            const body = raw.subarray(at, at + t.bodyBytes);
            at += t.bodyBytes;
            return { ...t, body };
          });
          let crc = 0;
          for (const t of txs) crc = crc32(t.body, crc);
          if (
            at > raw.length ||
            txs.some((t, i) => t.body.length !== header.txs[i]!.bodyBytes) ||
            crc !== header.crc
          )
            throw new Error('torn journal record');
          next = at;
        } catch (err) {
          this.#o.logger.info('replica dropped a torn journal record', { err: String(err), offset: off });
          break;
        }
        this.#writePages(fd, txs);
        this.#pos = header.position;
        redone++;
        off = next;
      }
      if (redone > 0) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (redone > 0) {
      writePosition(this.#posPath, this.#sidecar());
      this.#o.logger.info('replica journal redone', { txid: this.#pos.txid, batches: redone });
    }
    rmSync(this.#journalPath, { force: true });
  }

  // ---- public ----

  async lag(): Promise<ReplicaLag> {
    const tip = await streamTip(this.#jsm, this.#names);
    const caughtUp = tip.completeSeq === 0 || tip.completeSeq <= this.#pos.seq;
    // Txids, not messages: a transaction may span chunks, a message may carry a group of commits. A
    // replica whose txid is above the stream's (a history that went backwards) shows 0 here and
    // `stalled`/`refused` in its state.
    const transactions = caughtUp ? 0 : Math.max(0, tip.txid - this.#pos.txid);
    if (transactions === 0) this.#behindSince = undefined;
    else this.#behindSince ??= this.#o.clock.now();
    const seconds = this.#behindSince === undefined ? 0 : (this.#o.clock.now() - this.#behindSince) / 1000;
    return { transactions, seconds, streamTxid: tip.completeSeq ? tip.txid : this.#pos.txid };
  }

  waitForTxid(txid: number, timeoutMs = 30_000): Promise<WalPosition> {
    return this.#waitUntil(() => this.#pos.txid >= txid, timeoutMs, `replica apply of txid ${txid}`).then(
      () => this.position(),
    );
  }

  async catchUp(timeoutMs = 30_000, opts: { stallTimeoutMs?: number } = {}): Promise<WalPosition> {
    if (this.#closed) throw new ClosedError('wal replica');
    const tip = await streamTip(this.#jsm, this.#names);
    // The tip is the last complete transaction: chunks of an unfinished one after it are never applied.
    const target = tip.completeSeq > 0 ? tip.txid : 0;
    const stallMs = opts.stallTimeoutMs ?? 15_000;
    const started = this.#o.clock.now();
    const done = () => this.#pos.txid >= target;
    for (;;) {
      if (this.#closed) throw new ClosedError('wal replica');
      if (this.#state.state === ReplicaStateName.Stalled)
        throw new ReplicaStalledError(
          `${this.#state.reason ?? 'unknown'} (at txid ${this.#pos.txid}, the stream's tip is txid ${target})`,
        );
      if (done()) break;
      const now = this.#o.clock.now();
      const noProgressFor = now - Math.max(this.#progressAt, started);
      if (noProgressFor >= stallMs || now - started >= timeoutMs) {
        throw new TimeoutError(
          `replica catch-up to txid ${target} (at txid ${this.#pos.txid}, ${this.#state.state}${
            this.#state.reason ? `: ${this.#state.reason}` : ''
          }; ${noProgressFor >= stallMs ? `no progress for ${Math.round(noProgressFor)} ms` : 'overall bound'})`,
          noProgressFor >= stallMs ? stallMs : timeoutMs,
        );
      }
      // Woken by every applied batch and state change; re-checks the bounds at least every 250 ms.
      await this.#waitUntil(
        () => done() || this.#state.state === ReplicaStateName.Stalled,
        Math.min(250, stallMs),
        'catch-up tick',
      ).catch(() => undefined);
    }
    await this.#applyLock;
    return this.position();
  }

  snapshotTo(dir: string): Promise<SnapshotSource> {
    return this.#locked(() => {
      const path = join(dir, 'snapshot.db');
      copyFileSync(this.replicaPath, path);
      const fd = openSync(path, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      return {
        path,
        position: {
          txid: this.#pos.txid,
          seq: this.#pos.seq,
          epoch: this.#pos.epoch,
          checksum: this.#pos.checksum,
          pageSizeBytes: this.#pos.pageSizeBytes,
          pageCount: this.#pos.dbPages,
        },
      };
    });
  }

  #onClose: Array<() => void> = [];
  /** Internal: runs `fn` once when the replica closes. */
  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#setState(ReplicaStateName.Closed);
    for (const fn of this.#onClose.splice(0)) fn();
    this.#messages?.stop();
    await this.#loop?.catch(() => undefined);
    await this.#applyLock;
    await this.#flush();
    this.#closeFiles();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a replica of an app's database. On start it (1) refuses a directory owned by another app,
 * (2) adopts a former primary's database at `path` if the stream holds its exact state, or moves it
 * aside and reports {@link UnreplicatedWritesError}, (3) verifies its own copy against its recorded
 * position, (4) otherwise bootstraps from the newest snapshot that verifies; then applies the stream
 * in order.
 *
 * @example
 * const replica = await createReplica(nc, { platform: 'prod', app: 'orders', path: '/data/orders.db', snapshots: store });
 * console.log(await replica.lag());
 */
export async function createReplica(
  nc: NatsConnection,
  options: Partial<ReplicaOptions> & Pick<ReplicaOptions, 'platform' | 'app' | 'path'>,
): Promise<Replica> {
  const o: ReplicaOptions = {
    ...defaultReplicaOptions(),
    replicaPath: `${options.path}.replica`,
    ...options,
  };
  const names = walNames(o.platform, o.app);
  const jsm = await ensureWalStream(nc, names, o.streamReplicas);
  const maxPayload = nc.info?.max_payload ?? 1 << 20;
  const r = new ReplicaImpl(o, names, jetstream(nc), jsm, () =>
    Math.max(
      2,
      Math.min(512, Math.floor(PULL_BUDGET_BYTES / Math.max(1, replicasOn.get(nc) ?? 1) / maxPayload)),
    ),
  );
  replicasOn.set(nc, (replicasOn.get(nc) ?? 0) + 1);
  r.onClose(() => replicasOn.set(nc, Math.max(0, (replicasOn.get(nc) ?? 1) - 1)));
  if (o.onEvent) r.onEvent(o.onEvent);
  try {
    await r.start();
  } catch (err) {
    await r.close().catch(() => undefined);
    throw err;
  }
  return r;
}
