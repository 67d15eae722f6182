import {
  ClosedError,
  fileEpochStore,
  TimeoutError,
  type AppResourceNames,
  type Clock,
  type ConnectOptions,
  type Epoch,
  type Logger,
} from '@gc/core';
import { createElection, type Election, type LeaderInfo } from '@gc/election';
import {
  createActiveCoordinator,
  createBackendFromConfig,
  defaultActiveCoordinatorOptions,
  type ActiveCoordinator,
  type Backend,
  type PhaseContext,
} from '@gc/backends';
import { createEvents, type Events } from '@gc/events';
import { createVip, type Vip } from '@gc/vip';
import type { SnapshotInfo } from '@gc/snapshot';
import type { Primary, Replica } from '@gc/wal';
import { ReplicatedDatabase } from './replication.js';
import { createLocks, type Locks } from '@gc/locks';
import { createRpcServer, type HandleOptions, type Handler, type RpcServer } from '@gc/rpc';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { trace, SpanStatusCode } from '@opentelemetry/api';
import { join } from 'node:path';
import { HookRunner } from './hooks.js';
import type { PlatformMetrics } from './metrics.js';
import {
  AppMode,
  AppRole,
  type App,
  type AppHooks,
  type AppOptions,
  type AppStatus,
  type HookFailure,
  type HookName,
} from './types.js';

const tracer = trace.getTracer('@gc/platform');

/** What an app needs from its platform. */
export interface AppDeps {
  nc: NatsConnection;
  /** The options the platform connected with; undefined when it was given a connection. */
  connectOptions: Partial<ConnectOptions> | undefined;
  nodeId: string;
  names: AppResourceNames;
  dataDir: string;
  clock: Clock;
  logger: Logger;
  metrics: PlatformMetrics;
  registry: PlatformMetrics['registry'];
  onHookFailure: (f: HookFailure) => void;
  /** Tells membership which apps this node runs. */
  appsChanged: () => void;
  /** False while the node is unhealthy: its RPC instances leave the `any` pool. */
  healthy: () => boolean;
  audit: (type: string, data: Record<string, unknown>) => void;
  /**
   * Adds a check to the node's health (`/health`, `gc health`): critical (a broken replica makes the node
   * unhealthy) but not part of readiness (the node still serves its other apps).
   */
  registerHealth: (name: string, check: () => Promise<true | string>) => void;
  unregisterHealth: (name: string) => void;
}

/**
 * An app on this node. Transitions (activate, deactivate) run one at a time in a queue, so hooks never
 * overlap; a transition that is superseded (leadership lost during onActive) has its signal aborted.
 */
export class AppImpl implements App {
  readonly name: string;
  readonly mode: AppMode;
  readonly #o: AppOptions;
  readonly #d: AppDeps;
  readonly #hooks: HookRunner;
  #role: AppRole = AppRole.Stopped;
  #epoch: Epoch = 0;
  #election: Election | undefined;
  #unsubscribe: Array<() => void> = [];
  #queue: Promise<void> = Promise.resolve();
  #current: AbortController | undefined;
  #kv: Promise<KV> | undefined;
  #locks: Promise<Locks> | undefined;
  #events: Promise<Events> | undefined;
  #lastLeader: { holder: string | null; epoch: Epoch } = { holder: null, epoch: 0 };
  #hookFailures = 0;
  #roleWaiters = new Set<() => void>();
  #starting: Promise<void> | undefined;
  #rpc: RpcServer | undefined;
  #coordinator: ActiveCoordinator | undefined;
  #backend: Backend | undefined;
  #vip: Vip | undefined;
  #lastActivation: Record<string, number> | undefined;
  #db: ReplicatedDatabase | undefined;
  #pendingHandlers: Array<(server: RpcServer) => void> = [];
  #stopping: Promise<void> | undefined;

  constructor(name: string, o: AppOptions, d: AppDeps, hookTimeoutMs: number) {
    this.name = name;
    this.mode = o.mode;
    this.#o = o;
    this.#d = d;
    this.#hooks = new HookRunner({
      app: name,
      timeoutMs: o.hookTimeoutMs ?? hookTimeoutMs,
      clock: d.clock,
      logger: d.logger,
      onFailure: (f) => {
        this.#hookFailures++;
        d.onHookFailure(f);
      },
    });
    for (const [hook, fn] of Object.entries(o.hooks) as Array<[HookName, AppHooks[HookName]]>) {
      if (fn) this.#hooks.add(hook, fn);
    }
  }

  /** Runs a hook for events that come from the platform (membership, health). */
  runHook<H extends HookName>(hook: H, arg: Parameters<AppHooks[H]>[0]): Promise<HookFailure[]> {
    return this.#hooks.run(hook, arg);
  }

  kv(): Promise<KV> {
    this.#kv ??= new Kvm(this.#d.nc).create(this.#d.names.kv, { replicas: this.#o.kvReplicas, history: 1 });
    return this.#kv;
  }

  locks(): Promise<Locks> {
    this.#locks ??= createLocks(this.#d.nc, {
      bucket: this.#d.names.locks,
      owner: this.#d.nodeId,
      clock: this.#d.clock,
      logger: this.#d.logger,
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
      onEvent: (e) => this.#d.audit(`lock.${e.type}`, { ...e }),
    });
    return this.#locks;
  }

  events(): Promise<Events> {
    this.#events ??= createEvents(this.#d.nc, {
      platform: this.#d.names.platform,
      app: this.name,
      nodeId: this.#d.nodeId,
      logger: this.#d.logger,
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
    });
    return this.#events;
  }

  handle<In = unknown, Out = unknown>(method: string, fn: Handler<In, Out>, opts?: HandleOptions<In>): void {
    const register = (server: RpcServer) => server.handle(method, fn, opts);
    if (this.#rpc) register(this.#rpc);
    else this.#pendingHandlers.push(register);
  }

  role(): AppRole {
    return this.#role;
  }

  isActive(): boolean {
    return this.#role === AppRole.Active;
  }

  epoch(): Epoch {
    return this.#role === AppRole.Active ? this.#epoch : 0;
  }

  leader(): LeaderInfo | null {
    return this.#election ? this.#election.leader() : null;
  }

  on<H extends HookName>(hook: H, fn: AppHooks[H]): () => void {
    return this.#hooks.add(hook, fn);
  }

  async waitForActive(timeoutMs: number): Promise<void> {
    if (this.isActive()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.isActive()) {
          cleanup();
          resolve();
        }
      };
      const timer = this.#d.clock.setTimeout(() => {
        cleanup();
        reject(
          new TimeoutError(`waiting for app ${this.name} to become active on ${this.#d.nodeId}`, timeoutMs),
        );
      }, timeoutMs);
      const cleanup = () => {
        this.#roleWaiters.delete(check);
        this.#d.clock.clearTimeout(timer);
      };
      this.#roleWaiters.add(check);
    });
  }

  #setRole(role: AppRole): void {
    if (this.#role === role) return;
    this.#role = role;
    this.#d.metrics.appActive.set({ app: this.name }, role === AppRole.Active ? 1 : 0);
    // The leader subject follows the role at once (the RPC server also polls as a backstop).
    void this.#rpc?.refresh().catch((err: unknown) => this.#d.logger.warn('rpc refresh failed', { err }));
    for (const w of [...this.#roleWaiters]) w();
  }

  /** Backend state for `status()` (refreshed by `refreshStatus()`, which the platform awaits). */
  #backendStatus: AppStatus['backend'];

  /** Refreshes the parts of the status that need I/O (backend state, replication lag). */
  async refreshStatus(): Promise<void> {
    if (this.#backend) {
      const st = await this.#backend.status().catch(() => undefined);
      if (st) this.#backendStatus = { kind: st.kind, state: st.state, pid: st.pid, restarts: st.restarts };
    }
    await this.#db?.refresh();
  }

  sqlite(): { path: string; primary: Primary | undefined; replica: Replica | undefined } | undefined {
    return this.#db
      ? { path: this.#db.path, primary: this.#db.primary, replica: this.#db.replica }
      : undefined;
  }

  status(): AppStatus {
    const l = this.#election?.leader();
    return {
      name: this.name,
      mode: this.mode,
      role: this.#role,
      leader: this.mode === AppMode.Pool ? null : (l?.holder ?? null),
      epoch: this.mode === AppMode.Pool ? 0 : (l?.epoch ?? 0),
      hookFailures: this.#hookFailures,
      ...(this.#backendStatus ? { backend: this.#backendStatus } : {}),
      ...(this.#db ? { replication: this.#db.status() } : {}),
      ...(this.#vip ? { vip: { address: this.#vip.address, held: this.#vip.state === 'held' } } : {}),
      ...(this.#lastActivation ? { lastActivation: this.#lastActivation } : {}),
    };
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch((err: unknown) =>
      this.#d.logger.error('app transition failed', { app: this.name, err }),
    );
    return this.#queue;
  }

  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#stopping) throw new ClosedError(`app ${this.name}`);
    // The app's KV bucket exists from the start, so operators (`gc kv`) can use it before the app does.
    await this.kv().catch((err: unknown) => {
      this.#kv = undefined;
      this.#d.logger.warn('cannot create the app KV bucket yet; kv() will retry', {
        bucket: this.#d.names.kv,
        err,
      });
    });
    await this.#hooks.run('onStart', { app: this.name, nodeId: this.#d.nodeId });
    this.#rpc = createRpcServer(this.#d.nc, {
      platform: this.#d.names.platform,
      app: this.name,
      nodeId: this.#d.nodeId,
      isLeader: () => this.mode === AppMode.ActivePassive && this.#role === AppRole.Active,
      epoch: () => (this.#role === AppRole.Active && this.#epoch > 0 ? this.#epoch : undefined),
      healthy: this.#d.healthy,
      logger: this.#d.logger,
      clock: this.#d.clock,
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
    });
    for (const register of this.#pendingHandlers.splice(0)) register(this.#rpc);
    this.#d.appsChanged();
    this.#setRole(AppRole.Passive);
    this.#d.audit('app.started', { mode: this.mode });
    if (this.mode === AppMode.Pool) {
      await this.#enqueue(() => this.#activate(0, 'started'));
      return;
    }
    await this.#buildCoordinator();
    const election = await createElection(this.#d.nc, {
      bucket: this.#d.names.election,
      key: 'leader',
      nodeId: this.#d.nodeId,
      ...this.#o.election,
      epochStore: fileEpochStore(join(this.#d.dataDir, `${this.name}.epoch`)),
      clock: this.#d.clock,
      logger: this.#d.logger.child({ app: this.name }),
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
    });
    this.#election = election;
    this.#unsubscribe.push(
      election.on(
        'acquired',
        ({ epoch, via }) => void this.#enqueue(() => this.#activate(epoch, `elected (${via})`)),
      ),
      election.on('lost', ({ reason, detail }) => {
        this.#current?.abort();
        void this.#enqueue(() => this.#deactivate(`lost: ${reason}${detail ? ` (${detail})` : ''}`));
      }),
      election.on('stepped-down', () => {
        this.#current?.abort();
        void this.#enqueue(() => this.#deactivate('step-down'));
      }),
      election.on('leader', (info) => this.#leaderChanged(info)),
    );
    this.#leaderChanged(election.leader());
  }

  /**
   * The active sequence of an active-passive app (promote data → VIP → backend healthy → onActive, and
   * the reverse) runs in `@gc/backends`' coordinator: each phase fenced by the epoch, timed, and undone
   * in reverse when a later one fails.
   */
  async #buildCoordinator(): Promise<void> {
    const log = this.#d.logger;
    if (this.#o.backend) {
      const b = this.#o.backend;
      this.#backend = isBackend(b)
        ? b
        : await createBackendFromConfig(b, { name: this.name, logger: log, clock: this.#d.clock });
    }
    if (this.#o.vip) {
      this.#vip = createVip({
        // createVip merges a partial `arp` over its defaults
        ...(this.#o.vip as Parameters<typeof createVip>[0]),
        currentEpoch: () => (this.#epoch > 0 && this.#election?.isLeader() ? this.#epoch : undefined),
        logger: log,
        clock: this.#d.clock,
        onEvent: (e) => this.#d.audit(`vip.${e.type}`, { ...e }),
      });
    }
    if (this.#o.sqlite) {
      this.#db = new ReplicatedDatabase(this.#o.sqlite, {
        nc: this.#d.nc,
        connectOptions: this.#d.connectOptions,
        nodeId: this.#d.nodeId,
        names: this.#d.names,
        app: this.name,
        dataDir: this.#d.dataDir,
        clock: this.#d.clock,
        logger: this.#d.logger,
        registry: this.#d.registry,
        audit: this.#d.audit,
        deposed: () => void this.stepDown().catch(() => undefined),
      });
      await this.#db.start();
      this.#d.registerHealth(`replication-${this.name}`, async () => {
        await this.#db?.refresh();
        return this.#db?.health() ?? true;
      });
    }
    const db = this.#db;
    const vip = this.#vip;
    const timeout = this.#hooks.timeoutMs;
    this.#coordinator = createActiveCoordinator({
      name: this.name,
      steps: {
        ...(db
          ? {
              promote: {
                activate: (ctx: PhaseContext) => db.activate(ctx.epoch),
                deactivate: (ctx: PhaseContext) => db.deactivate(ctx.epoch),
              },
            }
          : {}),
        ...(vip
          ? {
              vip: {
                activate: async ({ epoch }: PhaseContext) => void (await vip.acquire(epoch)),
                deactivate: ({ reason }: PhaseContext) => vip.release(reason),
              },
            }
          : {}),
        ...(this.#backend ? { backend: this.#backend } : {}),
        onActive: {
          activate: (ctx: PhaseContext) => this.#runOnActive(ctx),
          deactivate: (ctx: PhaseContext) => this.#runOnPassive(ctx),
        },
      },
      // Each hook has its own timeout; the phase allows all of them.
      timeouts: {
        ...defaultActiveCoordinatorOptions().timeouts,
        ...Object.fromEntries(Object.entries(this.#o.phaseTimeouts ?? {}).filter(([, v]) => v !== undefined)),
        onActiveMs: timeout * (this.#hooks.count('onActive') + this.#hooks.count('onPassive') + 1),
      },
      clock: this.#d.clock,
      logger: log,
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
      onEvent: (e) => {
        if (e.type === 'phase')
          this.#d.audit(`app.phase.${e.direction}`, {
            phase: e.phase,
            epoch: e.epoch,
            ok: e.ok,
            ms: Math.round(e.durationMs),
            ...(e.error ? { error: e.error } : {}),
          });
        else if (e.type === 'backend-restart' || e.type === 'backend-unhealthy')
          this.#d.audit(`backend.${e.type.slice(8)}`, { ...e });
        else if (e.type === 'backend-failed') {
          this.#d.audit('backend.failed', { epoch: e.epoch, reason: e.reason });
          // A leader whose service cannot be kept healthy hands over to a standby.
          void this.stepDown().catch((err: unknown) =>
            log.error('step-down after backend failure failed', { err }),
          );
        }
      },
    });
  }

  /**
   * Takes a snapshot of the primary database now (consistent at a txid), stores it in
   * `{platform}_{app}_snapshots`, applies retention and trims the WAL stream below the oldest kept
   * snapshot (never its last transaction). Only the active node can.
   */
  snapshot(): Promise<SnapshotInfo> {
    if (!this.#db) throw new ClosedError(`app ${this.name} has no replicated database`);
    return this.#db.snapshot();
  }

  /**
   * The operator's way out when no node can prove its copy is current (the WAL stream and every snapshot
   * were deleted): the next promotion on this node publishes its copy as the new truth. Audited.
   */
  allowUnprovenPublish(reason: string): void {
    if (!this.#db) throw new ClosedError(`app ${this.name} has no replicated database`);
    this.#db.allowUnprovenPublish(reason);
  }

  async #runOnActive(ctx: PhaseContext): Promise<void> {
    const failures = await this.#hooks.run('onActive', {
      app: this.name,
      nodeId: this.#d.nodeId,
      epoch: ctx.epoch,
      signal: ctx.signal,
      reason: this.#reason,
    });
    if (failures.length) {
      // Let the hooks clean up what they started before the coordinator undoes the earlier phases.
      await this.#hooks.run('onPassive', {
        app: this.name,
        nodeId: this.#d.nodeId,
        epoch: ctx.epoch,
        signal: ctx.signal,
        reason: 'onActive failed',
      });
      throw failures[0]!.error;
    }
  }

  async #runOnPassive(ctx: PhaseContext): Promise<void> {
    const failures = await this.#hooks.run('onPassive', {
      app: this.name,
      nodeId: this.#d.nodeId,
      epoch: ctx.epoch,
      signal: ctx.signal,
      reason: ctx.reason ?? this.#reason,
    });
    if (failures.length) throw failures[0]!.error;
  }

  #reason = '';

  #leaderChanged(info: LeaderInfo): void {
    if (info.holder === this.#lastLeader.holder && info.epoch === this.#lastLeader.epoch) return;
    this.#lastLeader = { holder: info.holder, epoch: info.epoch };
    this.#d.audit('app.leader', { leader: info.holder, epoch: info.epoch });
    void this.#hooks.run('onLeaderChange', { app: this.name, leader: info.holder, epoch: info.epoch });
  }

  async #activate(epoch: Epoch, reason: string): Promise<void> {
    if (this.#stopping) return;
    if (
      this.mode === AppMode.ActivePassive &&
      !(this.#election?.isLeader() && this.#election.epoch() === epoch)
    )
      return;
    const ac = new AbortController();
    this.#current = ac;
    this.#epoch = epoch;
    this.#reason = reason;
    this.#setRole(AppRole.Activating);
    const started = this.#d.clock.now();
    const error = await tracer.startActiveSpan('gc.app.activate', async (span) => {
      span.setAttributes({
        'gc.app': this.name,
        'gc.node': this.#d.nodeId,
        'gc.epoch': epoch,
        'gc.reason': reason,
      });
      let err: Error | undefined;
      if (this.#coordinator) {
        try {
          const report = await this.#coordinator.activate(epoch);
          this.#lastActivation = Object.fromEntries(
            report.phases.map((ph) => [ph.phase, Math.round(ph.durationMs)]),
          );
        } catch (e) {
          err = e instanceof Error ? e : new Error(String(e));
        }
      } else {
        const f = await this.#hooks.run('onActive', {
          app: this.name,
          nodeId: this.#d.nodeId,
          epoch,
          signal: ac.signal,
          reason,
        });
        if (f.length) {
          await this.#hooks.run('onPassive', {
            app: this.name,
            nodeId: this.#d.nodeId,
            epoch,
            signal: ac.signal,
            reason: 'onActive failed',
          });
          err = f[0]!.error;
        }
      }
      if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
      return err;
    });
    const seconds = (this.#d.clock.now() - started) / 1000;
    this.#d.metrics.transitionSeconds.observe({ app: this.name, transition: 'activate' }, seconds);
    if (error) {
      // A node that cannot become active (a failed phase or onActive) hands leadership on.
      this.#d.audit('app.activate_failed', { epoch, error: error.message });
      this.#epoch = 0;
      this.#setRole(AppRole.Passive);
      if (this.#election?.isLeader()) await this.#election.stepDown();
      return;
    }
    if (ac.signal.aborted) return; // a deactivate is queued behind us
    this.#setRole(AppRole.Active);
    this.#d.audit('app.activated', {
      epoch,
      reason,
      ms: Math.round(seconds * 1000),
      ...(this.#lastActivation ? { phases: this.#lastActivation } : {}),
    });
  }

  async #deactivate(reason: string): Promise<void> {
    if (this.#role !== AppRole.Active && this.#role !== AppRole.Activating) return;
    const epoch = this.#epoch;
    this.#setRole(AppRole.Deactivating);
    const ac = new AbortController();
    const started = this.#d.clock.now();
    await tracer.startActiveSpan('gc.app.deactivate', async (span) => {
      span.setAttributes({
        'gc.app': this.name,
        'gc.node': this.#d.nodeId,
        'gc.epoch': epoch,
        'gc.reason': reason,
      });
      let err: Error | undefined;
      if (this.#coordinator) {
        this.#reason = reason;
        await this.#coordinator.deactivate(reason).catch((e: unknown) => {
          err = e instanceof Error ? e : new Error(String(e));
        });
      } else {
        const f = await this.#hooks.run('onPassive', {
          app: this.name,
          nodeId: this.#d.nodeId,
          epoch,
          signal: ac.signal,
          reason,
        });
        err = f[0]?.error;
      }
      if (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        this.#d.audit('app.deactivate_failed', { epoch, error: err.message });
      }
      span.end();
    });
    const seconds = (this.#d.clock.now() - started) / 1000;
    this.#d.metrics.transitionSeconds.observe({ app: this.name, transition: 'deactivate' }, seconds);
    this.#epoch = 0;
    this.#setRole(this.#stopping ? AppRole.Stopped : AppRole.Passive);
    this.#d.audit('app.deactivated', { epoch, reason, ms: Math.round(seconds * 1000) });
  }

  async stepDown(): Promise<void> {
    if (this.mode !== AppMode.ActivePassive || !this.#election) return;
    // Stop acting first, then release the lease, so the standby never overlaps with us.
    this.#current?.abort();
    await this.#enqueue(() => this.#deactivate('step-down'));
    await this.#election.stepDown();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    this.#current?.abort();
    this.#db?.stopping();
    await this.#enqueue(() => this.#deactivate('shutdown'));
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#election?.close();
    await this.#coordinator?.close();
    await this.#db?.stop();
    this.#d.unregisterHealth(`replication-${this.name}`);
    await this.#vip?.close();
    await this.#backend?.close();
    await this.#rpc?.close();
    await Promise.allSettled([this.#locks?.then((l) => l.close()), this.#events?.then((e) => e.close())]);
    if (this.#starting) await this.#hooks.run('onStop', { app: this.name, nodeId: this.#d.nodeId });
    this.#setRole(AppRole.Stopped);
    if (this.#starting) this.#d.audit('app.stopped', {});
  }
}

function isBackend(x: unknown): x is Backend {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as Backend).start === 'function' &&
    typeof (x as Backend).health === 'function'
  );
}
