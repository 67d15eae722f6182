import {
  ClosedError,
  type AppComponent,
  type ComponentContext,
  type ComponentTransition,
  type ConnectOptions,
} from '@gc/core';
import {
  createSnapshotStore,
  createSnapshotter,
  type SnapshotInfo,
  type Snapshotter,
  type SnapshotStore,
} from '@gc/snapshot';
import { reportPrimaryEvent, reportReplicaEvent, reportSnapshotEvent } from './component-events.js';
import { walMetrics, type WalMetrics } from './component-metrics.js';
import {
  idleStatus,
  primaryStatus,
  replicaStatus,
  replicationHealth,
  type ReplicationStatus,
} from './component-status.js';
import { NotAtTipError } from './errors.js';
import { demote, promote } from './promote.js';
import { createReplica } from './replica.js';
import type { Primary, PrimaryEvent, Replica, ReplicaEvent } from './types.js';
import { walNames, walTrimmer } from './stream.js';

/** Options of {@link replicatedDatabase}: the `sqlite` block of an app. */
export interface ReplicatedDatabaseOptions {
  /** The database file the app (or its backend) uses. */
  path: string;
  /** Make every commit wait until it is in the stream (RPO 0). Default false. */
  synchronous?: boolean;
  /** Take a snapshot this often while primary, in ms (0: never). Default 600000. */
  snapshotIntervalMs?: number;
  /** Replicas of the WAL stream and the snapshot store when they are created. Default 1. */
  replicas?: number;
  /**
   * Capture and publish from a worker thread with its own NATS connection made from these options (see
   * `PrimaryOptions.worker`). Default undefined: in the app's thread.
   */
  worker?: { connect: Partial<ConnectOptions> };
}

/**
 * The replicated SQLite database of an active-passive app on one node, as an app component: a replica while
 * passive (it follows the stream, bootstrapping from snapshots when it must), promoted when the node becomes
 * active (only a copy proven to be at the history's tip is published), snapshotted while primary, demoted
 * when the node stops being active. Its state is part of the node's health (`database-<app>`).
 *
 * @example
 * platform.app('orders', { components: [replicatedDatabase({ path: '/data/orders.db' })] });
 * // (the platform builds it from the app's `sqlite` option)
 */
export function replicatedDatabase(options: ReplicatedDatabaseOptions): ReplicatedDatabase {
  return new ReplicatedDatabase(options);
}

/** See {@link replicatedDatabase}. */
export class ReplicatedDatabase implements AppComponent {
  readonly name = 'database';
  readonly order = 100;
  /** Catch-up of a large backlog (bounded on its own, see `promote`) plus the snapshot restore. */
  readonly timeoutMs = 120_000;
  readonly #o: ReplicatedDatabaseOptions;
  #ctx: ComponentContext | undefined;
  #metrics: WalMetrics | undefined;
  #primary: Primary | undefined;
  #replica: Replica | undefined;
  #snapshots: SnapshotStore | undefined;
  #snapshotter: Snapshotter | undefined;
  #stopping = false;
  /** Why the last promotion on this node was refused (cleared by the next success). */
  #refused: { reason: string; kind: string; at: number; txid: number } | undefined;
  /** An operator allowed publishing this node's copy although it is not proven current (`gc app recover`). */
  #recover: { reason: string } | undefined;
  #status: ReplicationStatus = { role: 'none', txid: 0, lagTx: 0, lagMs: 0, state: 'starting' };
  #oldestUnackedAt: number | undefined;
  /** Why no replica runs on this node while it should (a failed demotion or start): retried with backoff. */
  #replicaError: { at: number; error: string } | undefined;
  #replicaStarting: Promise<void> | undefined;
  #retrying = false;
  /** An activation or deactivation is under way: the retry loop stands aside (it owns the files then). */
  #transitioning = false;

  constructor(options: ReplicatedDatabaseOptions) {
    this.#o = options;
  }

  get #d(): ComponentContext {
    if (!this.#ctx) throw new ClosedError(`the database component of ${this.#o.path} (not started)`);
    return this.#ctx;
  }

  get path(): string {
    return this.#o.path;
  }
  get primary(): Primary | undefined {
    return this.#primary;
  }
  get replica(): Replica | undefined {
    return this.#replica;
  }

  #where() {
    return { platform: this.#d.platform, app: this.#d.app, path: this.#o.path };
  }

  /** What every replica of this component is created with (at start, after a failed promotion, on demotion). */
  #replicaOptions() {
    return {
      ...this.#where(),
      snapshots: this.#snapshots,
      streamReplicas: this.#o.replicas ?? 1,
      clock: this.#d.clock,
      logger: this.#d.logger,
      onEvent: this.#replicaEvents,
    };
  }

  #replicaEvents = (e: ReplicaEvent) => reportReplicaEvent(e, this.#d, this.#metrics);

  /** Starts the replica (standby duty); one start at a time, nothing when one runs. */
  #startReplica(): Promise<void> {
    this.#replicaStarting ??= this.#doStartReplica().finally(() => (this.#replicaStarting = undefined));
    return this.#replicaStarting;
  }

  async #doStartReplica(): Promise<void> {
    if (this.#replica || this.#primary || this.#stopping) return;
    this.#snapshots ??= await createSnapshotStore(
      this.#d.nc,
      { platform: this.#d.platform, app: this.#d.app, replicas: this.#o.replicas ?? 1 },
      this.#d.clock,
    );
    this.#replica = await createReplica(this.#d.nc, this.#replicaOptions());
    if (this.#stopping) {
      // The app stopped while this start waited on NATS: nothing may outlive stop().
      await this.#replica.close().catch(() => undefined);
      this.#replica = undefined;
      return;
    }
    this.#replicaError = undefined;
  }

  /**
   * No replica runs although this node is a standby (its demotion or a restart failed, typically while
   * NATS was unreachable): starts one again with backoff (1 s doubling to 30 s) until it runs, this node is
   * promoted, or the app stops. Meanwhile the status says why and the health check is red.
   */
  #retryReplica(err: unknown): void {
    this.#replicaError = {
      at: this.#d.clock.wallNow(),
      error: err instanceof Error ? err.message : String(err),
    };
    if (this.#retrying || this.#stopping) return;
    this.#retrying = true;
    const attempt = async (waitMs: number): Promise<void> => {
      await this.#d.clock.sleep(waitMs);
      // A transition in progress (promotion, demotion) owns the files and ends with a primary or a replica
      // (or restarts this loop when it fails).
      if (this.#stopping || this.#replica || this.#primary || this.#transitioning) {
        this.#retrying = false;
        return;
      }
      const since = this.#replicaError?.at ?? this.#d.clock.wallNow();
      try {
        await this.#startReplica();
        this.#retrying = false;
        if (this.#replica)
          this.#d.audit('wal.replica_restarted', { afterMs: this.#d.clock.wallNow() - since });
      } catch (e) {
        this.#replicaError = {
          at: this.#replicaError?.at ?? this.#d.clock.wallNow(),
          error: (e as Error).message,
        };
        return attempt(Math.min(waitMs * 2, 30_000));
      }
    };
    void attempt(1000);
  }

  /** Starts as a replica (standby duty). */
  async start(ctx: ComponentContext): Promise<void> {
    this.#ctx = ctx;
    this.#metrics = ctx.registry ? walMetrics(ctx.registry) : undefined;
    await this.#startReplica();
  }

  /**
   * Lets the next promotion on this node publish its copy even though it is not proven to be the
   * history's tip: the operator's way out when the stream and every snapshot are gone. Audited.
   */
  allowUnprovenPublish(reason: string): void {
    this.#recover = { reason };
    this.#d.audit('wal.recover_armed', { reason });
  }

  /** Promote phase: catch up, prove and verify the replica, publish with the new epoch, start snapshots. */
  activate(t: ComponentTransition): Promise<void> {
    return this.#transition(() => this.#activate(t));
  }

  /** Runs a promotion or demotion; the replica retry loop stands aside meanwhile. */
  async #transition(fn: () => Promise<void>): Promise<void> {
    this.#transitioning = true;
    try {
      await fn();
    } finally {
      this.#transitioning = false;
    }
  }

  async #activate({ epoch }: ComponentTransition): Promise<void> {
    if (!this.#replica) await this.#startReplica();
    const replica = this.#replica!;
    // promote() closes the replica; if it fails, the next attempt (or standby duty) starts a new one.
    this.#replica = undefined;
    const recover = this.#recover;
    let primary: Primary;
    let t: object;
    try {
      ({ primary, timings: t } = await promote(
        replica,
        this.#where(),
        this.#d.nc,
        {
          epoch,
          synchronous: this.#o.synchronous ?? false,
          streamReplicas: this.#o.replicas ?? 1,
          ...(recover ? { unprovenState: 'publish' as const } : {}),
          ...(this.#o.worker ? { worker: this.#o.worker } : {}),
          clock: this.#d.clock,
          logger: this.#d.logger,
          onEvent: (e: PrimaryEvent) => reportPrimaryEvent(e, epoch, this.#d, this.#metrics),
        },
        this.#d.clock,
      ));
    } catch (err) {
      // Cleanup: the promotion's error is handled below.
      await replica.close().catch(() => undefined);
      const cause = (err as { cause?: unknown }).cause;
      const notAtTip =
        cause instanceof NotAtTipError ? cause : err instanceof NotAtTipError ? err : undefined;
      this.#refused = {
        reason: (err as Error).message + (cause instanceof Error ? `: ${cause.message}` : ''),
        kind: notAtTip?.kind ?? 'failed',
        at: this.#d.clock.wallNow(),
        txid: replica.position().txid,
      };
      this.#d.audit('wal.promotion_refused', {
        epoch,
        kind: this.#refused.kind,
        error: this.#refused.reason,
      });
      if (!this.#stopping)
        await this.#startReplica().catch((e: unknown) => {
          this.#d.logger.error('cannot restart the replica; retrying', { err: e });
          this.#retryReplica(e);
        });
      throw err;
    }
    const timings = t as Record<string, number>;
    this.#refused = undefined;
    if (recover) {
      this.#recover = undefined;
      this.#d.audit('wal.recovered', {
        epoch,
        reason: recover.reason,
        txid: primary.position().capturedTxid,
      });
    }
    this.#primary = primary;
    this.#oldestUnackedAt = undefined;
    this.#d.audit('wal.promoted', {
      epoch,
      ...Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])),
    });
    const names = walNames(this.#d.platform, this.#d.app);
    this.#snapshotter = createSnapshotter(this.#d.nc, this.#snapshots!, (dir) => primary.snapshotTo(dir), {
      platform: this.#d.platform,
      app: this.#d.app,
      intervalMs: this.#o.snapshotIntervalMs ?? 600_000,
      // An idle database is not snapshotted again every interval.
      currentTxid: () => primary.position().capturedTxid,
      scratchDir: this.#d.dataDir,
      clock: this.#d.clock,
      // Never trims the stream's last transaction: the history's tip stays in the stream.
      trim: walTrimmer(this.#d.nc, names),
      onEvent: (e) => reportSnapshotEvent(e, this.#d),
      logger: this.#d.logger,
    });
  }

  /** Takes a snapshot now (primary only). */
  snapshot(): Promise<SnapshotInfo> {
    if (!this.#snapshotter)
      throw new ClosedError(`the primary database of app ${this.#d.app} on ${this.#d.nodeId} (not active)`);
    return this.#snapshotter.snapshotNow();
  }

  /** Demote phase: stop publishing, become a replica; unreplicated local writes are reported, never merged. */
  deactivate(t: ComponentTransition): Promise<void> {
    return this.#transition(() => this.#deactivate(t));
  }

  async #deactivate({ epoch }: ComponentTransition): Promise<void> {
    await this.#snapshotter?.close();
    this.#snapshotter = undefined;
    const primary = this.#primary;
    if (!primary) return;
    this.#primary = undefined;
    if (this.#stopping) {
      await primary.stop();
      await primary.close();
      return;
    }
    let r: Awaited<ReturnType<typeof demote>>;
    try {
      r = await demote(primary, this.#d.nc, this.#replicaOptions(), this.#d.clock);
    } catch (err) {
      // The primary is stopped; the replica did not start (found by the server-restart drill: a demotion
      // while NATS was away left the node without a replica, "starting" and green, for good).
      this.#d.audit('wal.demote_failed', { epoch, error: (err as Error).message });
      this.#retryReplica(err);
      throw err;
    }
    this.#replica = r.replica;
    this.#d.audit('wal.demoted', { epoch, ms: Math.round(r.timings.totalMs) });
    if (r.unreplicated) {
      this.#d.logger.warn(
        'writes of the deposed leader never reached the stream; they were moved aside, not merged',
        {
          err: r.unreplicated.message,
        },
      );
    }
  }

  /** Marks the start of shutdown: a demotion then only stops the primary. */
  stopping(): void {
    this.#stopping = true;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (!this.#ctx) return;
    // A failed start was reported by start() itself; stopping goes on regardless.
    await this.#replicaStarting?.catch(() => undefined);
    await this.#snapshotter?.close();
    await this.#primary?.close();
    await this.#replica?.close();
  }

  /** Refreshes the status (asks the server for the tip while a replica). */
  async refresh(): Promise<void> {
    if (!this.#ctx) return;
    const app = this.#d.app;
    const now = this.#d.clock.now();
    let st: ReplicationStatus;
    if (this.#primary) {
      const p = this.#primary.position();
      const unacked = Math.max(0, p.capturedTxid - p.txid);
      if (unacked === 0) this.#oldestUnackedAt = undefined;
      else this.#oldestUnackedAt ??= now;
      const lagMs = this.#oldestUnackedAt === undefined ? 0 : now - this.#oldestUnackedAt;
      this.#metrics?.unacked.set({ app }, unacked);
      st = primaryStatus(p, unacked, lagMs);
    } else if (this.#replica) {
      const r = this.#replica;
      const pos = r.position();
      const state = r.state();
      const lag = await r.lag().catch((err: unknown) => ({ error: err as Error }));
      // A refused promotion is history once this copy moved on (it follows another node's history now).
      if (this.#refused && pos.txid !== this.#refused.txid) this.#refused = undefined;
      st = replicaStatus(pos, state, lag, this.#status, this.#refused);
      this.#metrics?.lagTx.set({ app }, st.lagTx);
      this.#metrics?.lagSeconds.set({ app }, st.lagMs / 1000);
    } else {
      st = idleStatus(this.#stopping, this.#refused, this.#replicaError);
    }
    this.#status = st;
    this.#metrics?.txid.set({ app, role: st.role }, st.txid);
    this.#metrics?.broken.set({ app }, this.health() === true ? 0 : 1);
  }

  /** The last refreshed status. */
  status(): Record<string, unknown> & ReplicationStatus {
    return { ...this.#status };
  }

  /** Health of replication on this node: true, or the reason it is broken. */
  health(): true | string {
    return replicationHealth(this.#status);
  }
}
