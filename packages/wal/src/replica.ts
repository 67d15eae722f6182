import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { ClosableResource, ClosedError, TimeoutError, realClock, silentLogger } from '@gc/core';
import type { SnapshotSource } from '@gc/snapshot';
import { ReplicaStalledError } from './errors.js';
import { fsyncFile, primarySidecarPath, readPosition, type WalPosition } from './position.js';
import { Applier } from './replica/apply.js';
import type { ReplicaParts } from './replica/bootstrap.js';
import { Follower } from './replica/consume.js';
import { ReplicaContext } from './replica/context.js';
import { Stalls } from './replica/stalls.js';
import { adoptDataPath, loadOrBootstrap } from './replica/startup.js';
import { ensureWalStream, streamTip, walNames, type WalNames } from './stream.js';
import {
  ReplicaStateName,
  type Replica,
  type ReplicaEvent,
  type ReplicaLag,
  type ReplicaOptions,
  type ReplicaState,
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

/**
 * Bytes of pulled-but-unread messages all replicas on one connection may have outstanding together: well
 * under the server's per-connection pending limit (64 MiB), so several replicas sharing a connection never
 * make it a slow consumer (which drops deliveries and stalls the ordered consumers).
 */
const PULL_BUDGET_BYTES = 16 << 20;
/** Live replicas per connection (they share {@link PULL_BUDGET_BYTES}). */
const replicasOn = new WeakMap<NatsConnection, number>();

/**
 * A replica of one app's database: composes the start-up (replica/startup.ts), bootstrap
 * (replica/bootstrap.ts), the consume loop (replica/consume.ts) with its stall handling (replica/stalls.ts)
 * and the applier (replica/apply.ts) around one shared context, and answers the public API.
 */
class ReplicaImpl extends ClosableResource implements Replica {
  readonly replicaPath: string;
  readonly #o: ReplicaOptions;
  readonly #ctx: ReplicaContext;
  readonly #stalls: Stalls;
  readonly #applier: Applier;
  readonly #parts: ReplicaParts;
  readonly #follower: Follower;
  #loop: Promise<void> | undefined;

  constructor(
    o: ReplicaOptions,
    names: WalNames,
    js: JetStreamClient,
    jsm: JetStreamManager,
    pullMessages: () => number,
  ) {
    super();
    this.#o = o;
    this.replicaPath = o.replicaPath;
    this.#ctx = new ReplicaContext(o, names, js, jsm);
    this.#stalls = new Stalls(this.#ctx);
    this.#applier = new Applier(this.#ctx);
    this.#parts = { ctx: this.#ctx, applier: this.#applier, stalls: this.#stalls };
    this.#follower = new Follower(this.#parts, pullMessages);
  }

  state(): ReplicaState {
    return { ...this.#ctx.state, bootstraps: this.#ctx.bootstraps, refusals: this.#ctx.refusals };
  }

  onEvent(listener: (e: ReplicaEvent) => void): () => void {
    this.#ctx.listeners.add(listener);
    return () => this.#ctx.listeners.delete(listener);
  }

  position(): WalPosition {
    return { ...this.#ctx.pos };
  }

  // ---- startup ----

  async start(): Promise<void> {
    // Ownership first: refuse before touching anything.
    readPosition(this.#ctx.posPath, this.#ctx.names.platform, this.#ctx.names.app);
    readPosition(primarySidecarPath(this.#o.path), this.#ctx.names.platform, this.#ctx.names.app);
    await adoptDataPath(this.#ctx);
    try {
      await loadOrBootstrap(this.#parts);
    } catch (err) {
      // A bootstrap that cannot finish now (server, snapshot store) is retried by the consume loop, with
      // backoff and a stalled state, instead of failing the start.
      this.#o.logger.warn('replica bootstrap failed; retrying', { err: String(err) });
      this.#ctx.emit({ type: 'error', error: err as Error });
      this.#ctx.pendingBootstrap = `start-up bootstrap failed: ${(err as Error).message}`;
    }
    this.#loop = this.#follower.run();
  }

  // ---- public ----

  async lag(): Promise<ReplicaLag> {
    const tip = await streamTip(this.#ctx.jsm, this.#ctx.names);
    const caughtUp = tip.completeSeq === 0 || tip.completeSeq <= this.#ctx.pos.seq;
    // Txids, not messages: a transaction may span chunks, a message may carry a group of commits. A
    // replica whose txid is above the stream's (a history that went backwards) shows 0 here and
    // `stalled`/`refused` in its state.
    const transactions = caughtUp ? 0 : Math.max(0, tip.txid - this.#ctx.pos.txid);
    if (transactions === 0) this.#ctx.behindSince = undefined;
    else this.#ctx.behindSince ??= this.#o.clock.now();
    const seconds =
      this.#ctx.behindSince === undefined ? 0 : (this.#o.clock.now() - this.#ctx.behindSince) / 1000;
    return { transactions, seconds, streamTxid: tip.completeSeq ? tip.txid : this.#ctx.pos.txid };
  }

  waitForTxid(txid: number, timeoutMs = 30_000): Promise<WalPosition> {
    return this.#ctx
      .waitUntil(() => this.#ctx.pos.txid >= txid, timeoutMs, `replica apply of txid ${txid}`)
      .then(() => this.position());
  }

  async catchUp(timeoutMs = 30_000, opts: { stallTimeoutMs?: number } = {}): Promise<WalPosition> {
    if (this.#ctx.closed) throw new ClosedError('wal replica');
    const tip = await streamTip(this.#ctx.jsm, this.#ctx.names);
    // The tip is the last complete transaction: chunks of an unfinished one after it are never applied.
    const target = tip.completeSeq > 0 ? tip.txid : 0;
    const stallMs = opts.stallTimeoutMs ?? 15_000;
    const started = this.#o.clock.now();
    const done = () => this.#ctx.pos.txid >= target;
    for (;;) {
      if (this.#ctx.closed) throw new ClosedError('wal replica');
      if (this.#ctx.state.state === ReplicaStateName.Stalled)
        throw new ReplicaStalledError(
          `${this.#ctx.state.reason ?? 'unknown'} (at txid ${this.#ctx.pos.txid}, the stream's tip is txid ${target})`,
        );
      if (done()) break;
      const now = this.#o.clock.now();
      const noProgressFor = now - Math.max(this.#ctx.progressAt, started);
      if (noProgressFor >= stallMs || now - started >= timeoutMs) {
        throw new TimeoutError(
          `replica catch-up to txid ${target} (at txid ${this.#ctx.pos.txid}, ${this.#ctx.state.state}${
            this.#ctx.state.reason ? `: ${this.#ctx.state.reason}` : ''
          }; ${noProgressFor >= stallMs ? `no progress for ${Math.round(noProgressFor)} ms` : 'overall bound'})`,
          noProgressFor >= stallMs ? stallMs : timeoutMs,
        );
      }
      // Woken by every applied batch and state change; re-checks the bounds at least every 250 ms.
      await this.#ctx
        .waitUntil(
          () => done() || this.#ctx.state.state === ReplicaStateName.Stalled,
          Math.min(250, stallMs),
          'catch-up tick',
        )
        // Only a pacing wait: the loop checks done() and the stall itself.
        .catch(() => undefined);
    }
    await this.#ctx.applyLock;
    return this.position();
  }

  snapshotTo(dir: string): Promise<SnapshotSource> {
    return this.#ctx.locked(() => {
      const path = join(dir, 'snapshot.db');
      copyFileSync(this.replicaPath, path);
      fsyncFile(path);
      return {
        path,
        position: {
          txid: this.#ctx.pos.txid,
          seq: this.#ctx.pos.seq,
          epoch: this.#ctx.pos.epoch,
          checksum: this.#ctx.pos.checksum,
          pageSizeBytes: this.#ctx.pos.pageSizeBytes,
          pageCount: this.#ctx.pos.dbPages,
        },
      };
    });
  }

  #onClose: Array<() => void> = [];
  /** Internal: runs `fn` once when the replica closes. */
  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  protected async closeResources(): Promise<void> {
    this.#ctx.closed = true;
    this.#ctx.setState(ReplicaStateName.Closed);
    for (const fn of this.#onClose.splice(0)) fn();
    this.#follower.messages?.stop();
    // The loop reported its errors as events while it ran; closing only waits for it to end.
    await this.#loop?.catch(() => undefined);
    await this.#ctx.applyLock;
    await this.#applier.flush();
    this.#applier.closeFiles();
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
  // A pull is bounded by a count of the largest possible messages, not by bytes: nats.js refills a
  // byte-bounded pull with only the bytes just used, and a pull with less room than the next (large)
  // message is answered "exceeds MaxBytes" and not renewed on an idle consumer.
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
    // Cleanup: the start's error is the one to report.
    await r.close().catch(() => undefined);
    throw err;
  }
  return r;
}
