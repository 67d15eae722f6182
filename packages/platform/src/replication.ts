import {
  ClosedError,
  type AppResourceNames,
  type Clock,
  type ConnectOptions,
  type Epoch,
  type Logger,
} from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  createSnapshotStore,
  createSnapshotter,
  type SnapshotInfo,
  type Snapshotter,
  type SnapshotStore,
} from '@gc/snapshot';
import {
  NotAtTipError,
  ReplicaStateName,
  createReplica,
  demote,
  promote,
  walNames,
  walTrimmer,
  type Primary,
  type PrimaryEvent,
  type Replica,
  type ReplicaEvent,
} from '@gc/wal';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AppOptions, ReplicationStatus } from './types.js';

/** Metrics of replicated databases (registered once per registry). */
interface WalMetrics {
  txid: Gauge<'app' | 'role'>;
  lagTx: Gauge<'app'>;
  lagSeconds: Gauge<'app'>;
  broken: Gauge<'app'>;
  unacked: Gauge<'app'>;
  bootstraps: Counter<'app' | 'from'>;
  refusals: Counter<'app'>;
  resyncs: Counter<'app'>;
  unreplicated: Counter<'app'>;
  stalls: Counter<'app'>;
}

const metricsByRegistry = new WeakMap<Registry, WalMetrics>();
function walMetrics(registry: Registry): WalMetrics {
  let m = metricsByRegistry.get(registry);
  if (m) return m;
  const g = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const c = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  m = {
    txid: g('gc_wal_txid', 'Last txid applied (replica) or acknowledged by the stream (primary)', [
      'app',
      'role',
    ]),
    lagTx: g('gc_wal_replica_lag_transactions', "Transactions behind the history's tip", ['app']),
    lagSeconds: g('gc_wal_replica_lag_seconds', 'How long the replica has been behind', ['app']),
    broken: g('gc_wal_broken', '1 while replication of the app on this node is stalled, refused or failing', [
      'app',
    ]),
    unacked: g(
      'gc_wal_primary_unacked_transactions',
      'Commits captured but not yet acknowledged by the stream',
      ['app'],
    ),
    bootstraps: c('gc_wal_bootstraps_total', 'Replica bootstraps by source', ['app', 'from']),
    refusals: c(
      'gc_wal_refusals_total',
      'Stream transactions a replica refused (gap, divergence, corruption)',
      ['app'],
    ),
    resyncs: c('gc_wal_resyncs_total', 'Whole-database publishes by a primary', ['app']),
    unreplicated: c('gc_wal_unreplicated_writes_total', "A deposed or stale copy's writes set aside", [
      'app',
    ]),
    stalls: c('gc_wal_stalls_total', 'Times a replica stalled', ['app']),
  };
  metricsByRegistry.set(registry, m);
  return m;
}

/** What the replicated database needs from its app. */
export interface ReplicatedDatabaseDeps {
  nc: NatsConnection;
  connectOptions: Partial<ConnectOptions> | undefined;
  nodeId: string;
  names: AppResourceNames;
  app: string;
  dataDir: string;
  clock: Clock;
  logger: Logger;
  registry: Registry | undefined;
  audit: (type: string, data: Record<string, unknown>) => void;
  /** The primary reports that another leader extended the stream: the app steps down. */
  deposed: () => void;
}

/** A primary whose commits stay unacknowledged this long is `publish-failing`. */
const PUBLISH_FAILING_MS = 10_000;
/** A replica behind the tip for this long counts as broken in health. */
const LAGGING_MS = 60_000;

/**
 * The replicated SQLite database of an active-passive app on one node: a replica while passive (it follows
 * the stream, bootstrapping from snapshots when it must), promoted when the node becomes active (only a copy
 * proven to be at the history's tip is published), snapshotted while primary, demoted when the node stops
 * being active. Its state is part of the node's health.
 */
export class ReplicatedDatabase {
  readonly #o: NonNullable<AppOptions['sqlite']>;
  readonly #d: ReplicatedDatabaseDeps;
  readonly #metrics: WalMetrics | undefined;
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

  constructor(options: NonNullable<AppOptions['sqlite']>, deps: ReplicatedDatabaseDeps) {
    this.#o = options;
    this.#d = deps;
    this.#metrics = deps.registry ? walMetrics(deps.registry) : undefined;
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
    return { platform: this.#d.names.platform, app: this.#d.app, path: this.#o.path };
  }

  #replicaEvents = (e: ReplicaEvent) => {
    const app = this.#d.app;
    if (e.type === 'bootstrap') {
      this.#metrics?.bootstraps.inc({ app, from: e.from });
      this.#d.audit('wal.bootstrap', {
        from: e.from,
        txid: e.txid,
        ...(e.reason ? { reason: e.reason } : {}),
      });
    } else if (e.type === 'unreplicated-writes') {
      this.#metrics?.unreplicated.inc({ app });
      this.#d.audit('wal.unreplicated_writes', {
        error: e.error.message,
        path: e.error.savedPath,
        afterTxid: e.error.lastReplicatedTxid,
        checksum: e.error.localChecksum,
      });
    } else if (e.type === 'refused') {
      this.#metrics?.refusals.inc({ app });
      this.#d.audit('wal.replica_refused', { error: e.error.message });
    } else if (e.type === 'stalled') {
      this.#metrics?.stalls.inc({ app });
      this.#d.audit('wal.replica_stalled', { reason: e.reason, retryInMs: e.retryInMs });
    } else if (e.type === 'recovered') this.#d.audit('wal.replica_recovered', { txid: e.txid });
    else if (e.type === 'error') this.#d.audit('wal.replica_error', { error: e.error.message });
  };

  async #startReplica(): Promise<void> {
    this.#snapshots ??= await createSnapshotStore(
      this.#d.nc,
      { platform: this.#d.names.platform, app: this.#d.app },
      this.#d.clock,
    );
    this.#replica = await createReplica(this.#d.nc, {
      ...this.#where(),
      snapshots: this.#snapshots,
      clock: this.#d.clock,
      logger: this.#d.logger,
      onEvent: this.#replicaEvents,
    });
  }

  /** Starts as a replica (standby duty). */
  async start(): Promise<void> {
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
  async activate(epoch: Epoch): Promise<void> {
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
          ...(recover ? { unprovenState: 'publish' as const } : {}),
          ...(this.#o.worker ? { worker: { connect: this.#d.connectOptions ?? {} } } : {}),
          clock: this.#d.clock,
          logger: this.#d.logger,
          onEvent: (e: PrimaryEvent) => this.#primaryEvent(e, epoch),
        },
        this.#d.clock,
      ));
    } catch (err) {
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
        await this.#startReplica().catch((e: unknown) =>
          this.#d.logger.error('cannot restart the replica', { err: e }),
        );
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
    const names = walNames(this.#d.names.platform, this.#d.app);
    this.#snapshotter = createSnapshotter(this.#d.nc, this.#snapshots!, (dir) => primary.snapshotTo(dir), {
      platform: this.#d.names.platform,
      app: this.#d.app,
      intervalMs: this.#o.snapshotIntervalMs ?? 600_000,
      scratchDir: this.#d.dataDir,
      clock: this.#d.clock,
      // Never trims the stream's last transaction: the history's tip stays in the stream.
      trim: walTrimmer(this.#d.nc, names),
      onEvent: (e) => {
        if (e.type === 'snapshot')
          this.#d.audit('snapshot.created', {
            snapshot: e.info.name,
            txid: e.info.txid,
            bytes: e.info.sizeBytes,
            ms: Math.round(e.durationMs),
          });
        else if (e.type === 'pruned')
          this.#d.audit('snapshot.pruned', {
            deleted: e.deleted.map((d) => d.name),
            ...(e.trimmedBelowSeq ? { trimmedBelowSeq: e.trimmedBelowSeq } : {}),
          });
        else this.#d.audit('snapshot.failed', { error: e.error.message });
      },
    });
  }

  #primaryEvent(e: PrimaryEvent, epoch: Epoch): void {
    if (e.type === 'not-leader') {
      // Another epoch extended the stream: we are no longer the leader.
      this.#d.audit('wal.not_leader', { epoch, error: e.error.message });
      this.#d.deposed();
    } else if (e.type === 'resync') {
      this.#metrics?.resyncs.inc({ app: this.#d.app });
      this.#d.audit('wal.resync', { txid: e.txid, reason: e.reason });
    } else if (e.type === 'error') this.#d.audit('wal.primary_error', { error: e.error.message });
  }

  /** Takes a snapshot now (primary only). */
  snapshot(): Promise<SnapshotInfo> {
    if (!this.#snapshotter)
      throw new ClosedError(`the primary database of app ${this.#d.app} on ${this.#d.nodeId} (not active)`);
    return this.#snapshotter.snapshotNow();
  }

  /** Demote phase: stop publishing, become a replica; unreplicated local writes are reported, never merged. */
  async deactivate(epoch: Epoch): Promise<void> {
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
    const r = await demote(
      primary,
      this.#d.nc,
      {
        ...this.#where(),
        snapshots: this.#snapshots,
        clock: this.#d.clock,
        logger: this.#d.logger,
        onEvent: this.#replicaEvents,
      },
      this.#d.clock,
    );
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
    await this.#snapshotter?.close();
    await this.#primary?.close();
    await this.#replica?.close();
  }

  /** Refreshes the status (asks the server for the tip while a replica). */
  async refresh(): Promise<ReplicationStatus> {
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
      st = {
        role: 'primary',
        txid: p.txid,
        checksum: p.checksum,
        lagTx: 0,
        lagMs: Math.round(lagMs),
        state: lagMs >= PUBLISH_FAILING_MS ? 'publish-failing' : 'primary',
        ...(lagMs >= PUBLISH_FAILING_MS
          ? {
              reason: `${unacked} captured transactions not acknowledged by the WAL stream for ${Math.round(lagMs / 1000)} s`,
            }
          : {}),
      };
    } else if (this.#replica) {
      const r = this.#replica;
      const pos = r.position();
      const state = r.state();
      const lag = await r.lag().catch((err: unknown) => ({ error: err as Error }));
      const lagTx = 'error' in lag ? this.#status.lagTx : lag.transactions;
      const lagMs = 'error' in lag ? this.#status.lagMs : Math.round(lag.seconds * 1000);
      // A refused promotion is history once this copy moved on (it follows another node's history now).
      if (this.#refused && pos.txid !== this.#refused.txid) this.#refused = undefined;
      st = {
        role: 'replica',
        txid: pos.txid,
        checksum: pos.checksum,
        lagTx,
        lagMs,
        state: this.#refused ? 'refused' : state.state,
        tipTxid: 'error' in lag ? this.#status.tipTxid : lag.streamTxid,
        bootstraps: state.bootstraps,
        refusals: state.refusals,
      };
      if (this.#refused) st.reason = `promotion refused (${this.#refused.kind}): ${this.#refused.reason}`;
      else if (state.state === ReplicaStateName.Stalled) st.reason = state.reason;
      else if (state.state === ReplicaStateName.Bootstrapping) st.reason = state.reason;
      else if ('error' in lag) st.reason = `cannot read the stream's tip: ${lag.error.message}`;
      else if (lagMs >= LAGGING_MS)
        st.reason = `${lagTx} transactions behind for ${Math.round(lagMs / 1000)} s`;
      this.#metrics?.lagTx.set({ app }, lagTx);
      this.#metrics?.lagSeconds.set({ app }, lagMs / 1000);
    } else {
      st = { role: 'none', txid: 0, lagTx: 0, lagMs: 0, state: this.#stopping ? 'stopped' : 'starting' };
      if (this.#refused) {
        st.state = 'refused';
        st.reason = this.#refused.reason;
      }
    }
    this.#status = st;
    this.#metrics?.txid.set({ app, role: st.role }, st.txid);
    this.#metrics?.broken.set({ app }, this.health() === true ? 0 : 1);
    return st;
  }

  /** The last refreshed status. */
  status(): ReplicationStatus {
    return { ...this.#status };
  }

  /** Health of replication on this node: true, or the reason it is broken. */
  health(): true | string {
    const s = this.#status;
    if (s.state === 'stalled' || s.state === 'refused' || s.state === 'publish-failing')
      return `${s.state}: ${s.reason ?? 'unknown'}`;
    if (s.role === 'replica' && s.reason) return `${s.state}: ${s.reason}`;
    return true;
  }
}
