import {
  ClosedError,
  ConfigError,
  fileEpochStore,
  TimeoutError,
  type AppComponent,
  type AppResourceNames,
  type AuditSeverity,
  type Clock,
  type ComponentContext,
  type ConnectOptions,
  type Epoch,
  type Logger,
} from '@gc/core';
import { createElection, type Election, type LeaderInfo } from '@gc/election';
import {
  createActiveCoordinator,
  defaultActiveCoordinatorOptions,
  type ActiveCoordinator,
  type SequenceStep,
} from '@gc/backends';
import { createEvents, type Events } from '@gc/events';
import type { SnapshotInfo } from '@gc/snapshot';
import type { Primary, ReplicatedDatabase, Replica } from '@gc/wal';
import { createLocks, type Locks } from '@gc/locks';
import { createRpcServer, NotOwnerError, type HandleOptions, type Handler, type RpcServer } from '@gc/rpc';
import type { Ring } from '@gc/ring';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { trace, SpanStatusCode } from '@opentelemetry/api';
import { join } from 'node:path';
import { CONTROL_METHOD_PREFIX } from './admin.js';
import { coordinatorAudit } from './audit.js';
import { composeComponents, hooksComponent, isBackendComponent } from './components.js';
import { HookRunner } from './hooks.js';
import { ringComponent, type RingComponent } from './ring.js';
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
  audit: (type: string, data: Record<string, unknown>, severity?: AuditSeverity) => void;
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
  /** Activation attempts on this node that failed in a row (reset by a successful one, or another node leading). */
  #activateFailures = 0;
  #lastActivateError: { at: string; error: string } | undefined;
  #roleWaiters = new Set<() => void>();
  #starting: Promise<void> | undefined;
  #rpc: RpcServer | undefined;
  #coordinator: ActiveCoordinator | undefined;
  #components: AppComponent[] = [];
  #started: AppComponent[] = [];
  #lastActivation: Record<string, number> | undefined;
  #db: ReplicatedDatabase | undefined;
  #ring: RingComponent | undefined;
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
    if (typeof method === 'string' && method.startsWith(CONTROL_METHOD_PREFIX))
      throw new ConfigError(
        'method',
        `app ${this.name}: method names starting with "${CONTROL_METHOD_PREFIX}" are reserved for the platform's control API`,
      );
    this.handleControl(method, fn, opts);
  }

  /** Registers a handler on the app's RPC server, reserved names included (the platform's control API). */
  handleControl<In = unknown, Out = unknown>(
    method: string,
    fn: Handler<In, Out>,
    opts?: HandleOptions<In>,
  ): void {
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

  partitions(): number[] {
    return this.#ring?.ring?.partitions() ?? [];
  }

  owns(key: string): boolean {
    return this.#ring?.ring?.owns(key) ?? false;
  }

  ring(): Ring | undefined {
    return this.#ring?.ring;
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

  /** Refreshes the parts of the status that need I/O (backend state, replication lag, …). */
  async refreshStatus(): Promise<void> {
    await Promise.all(
      this.#started.map(async (c) => {
        try {
          await c.refresh?.();
        } catch (err) {
          this.#d.logger.warn('component refresh failed', { component: c.name, err });
        }
      }),
    );
  }

  sqlite(): { path: string; primary: Primary | undefined; replica: Replica | undefined } | undefined {
    return this.#db
      ? { path: this.#db.path, primary: this.#db.primary, replica: this.#db.replica }
      : undefined;
  }

  status(): AppStatus {
    const l = this.#election?.leader();
    const byName = new Map(this.#started.map((c) => [c.name, c.status?.()]));
    const others = Object.fromEntries(
      [...byName].filter(([n, v]) => v !== undefined && !['database', 'vip', 'backend'].includes(n)),
    );
    const backend = byName.get('backend') as AppStatus['backend'] | undefined;
    const vip = byName.get('vip') as AppStatus['vip'] | undefined;
    return {
      name: this.name,
      mode: this.mode,
      role: this.#role,
      leader: l?.holder ?? null,
      epoch: l?.epoch ?? 0,
      hookFailures: this.#hookFailures,
      ...(this.#lastActivateError
        ? { activation: { failures: this.#activateFailures, lastError: this.#lastActivateError } }
        : {}),
      ...(this.#o.recoveryBudgetMs !== undefined ? { recoveryBudgetMs: this.#o.recoveryBudgetMs } : {}),
      ...(backend ? { backend } : {}),
      ...(this.#db ? { replication: this.#db.status() } : {}),
      ...(vip ? { vip } : {}),
      ...(Object.keys(others).length ? { components: others } : {}),
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
      // Ring mode: a key-routed call runs only on the key's owner; until this node joined the ring it owns
      // nothing (callers retry once the ring's records name an owner).
      ...(this.mode === AppMode.Ring
        ? {
            admitKey: (key: string, method: string) => {
              const ring = this.#ring?.ring;
              if (!ring) throw new NotOwnerError(this.name, method, this.#d.nodeId, 'not-joined');
              return ring.admit(key, method);
            },
          }
        : {}),
      logger: this.#d.logger,
      clock: this.#d.clock,
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
    });
    for (const register of this.#pendingHandlers.splice(0)) register(this.#rpc);
    this.#d.appsChanged();
    this.#setRole(AppRole.Passive);
    this.#d.audit('app.started', { mode: this.mode });
    await this.#startComponents();
    if (this.mode !== AppMode.ActivePassive) {
      // Pool and ring: every node that runs the app is active (a ring member joined the ring in its start).
      await this.#enqueue(() => this.#activate(0, 'started'));
      return;
    }
    // A node that cannot become active is broken even while another node leads: it is no standby.
    this.#d.registerHealth(`activation-${this.name}`, () =>
      Promise.resolve(
        this.#lastActivateError
          ? `activation failed ${this.#activateFailures} time(s) in a row, last at ${this.#lastActivateError.at}: ${this.#lastActivateError.error}`
          : true,
      ),
    );
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

  /** What every component of this app gets when it starts. */
  #componentContext(c: AppComponent): ComponentContext {
    return {
      platform: this.#d.names.platform,
      app: this.name,
      nodeId: this.#d.nodeId,
      nc: this.#d.nc,
      dataDir: this.#d.dataDir,
      clock: this.#d.clock,
      logger: this.#d.logger.child({ component: c.name }),
      registry: this.#d.registry,
      audit: (type, data, severity) => this.#d.audit(type, data, severity),
      stepDown: (reason) => {
        this.#d.logger.warn('component hands leadership on', { component: c.name, reason });
        void this.stepDown().catch((err: unknown) =>
          this.#d.logger.error('step-down asked by a component failed', { component: c.name, err }),
        );
      },
      leaderEpoch: () => (this.#epoch > 0 && this.#election?.isLeader() ? this.#epoch : undefined),
    };
  }

  /**
   * Composes the app's components (database → VIP → backend → its own → onActive/onPassive hooks), starts
   * them (standby duties, health checks) and builds the coordinator that runs their steps as the active
   * sequence: each step fenced by the epoch, timed, audited, and undone in reverse when a later one fails.
   */
  async #startComponents(): Promise<void> {
    const log = this.#d.logger;
    const { components, database } = await composeComponents(this.name, this.#o, {
      connectOptions: this.#d.connectOptions,
      logger: log,
      clock: this.#d.clock,
    });
    this.#db = database;
    if (this.mode === AppMode.Ring) this.#ring = ringComponent(this.#o.ring ?? {}, this.#hooks);
    this.#components = [
      ...(this.#ring ? [this.#ring] : []),
      ...components,
      hooksComponent(this.#hooks, { app: this.name, nodeId: this.#d.nodeId, reason: () => this.#reason }),
    ];
    for (const c of this.#components) {
      await c.start?.(this.#componentContext(c));
      this.#started.push(c);
      const health = c.health?.bind(c);
      if (health)
        this.#d.registerHealth(`${c.name}-${this.name}`, async () => {
          await c.refresh?.();
          return health();
        });
    }
    const sequence: SequenceStep[] = this.#components.map((c) =>
      isBackendComponent(c)
        ? {
            name: c.name,
            backend: c.backend,
            keepRunning: c.keepRunning,
            ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
          }
        : {
            name: c.name,
            ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
            activate: (t) => c.activate?.(t) ?? Promise.resolve(),
            deactivate: (t) => c.deactivate?.(t) ?? Promise.resolve(),
          },
    );
    this.#coordinator = createActiveCoordinator({
      name: this.name,
      steps: {},
      sequence,
      timeouts: defaultActiveCoordinatorOptions().timeouts,
      // Pool and ring apps activate with epoch 0 on every node: nothing to fence (a ring fences per partition).
      ...(this.mode !== AppMode.ActivePassive
        ? { fence: { highest: () => 0, observe: () => false, admit: () => true, check: () => undefined } }
        : {}),
      clock: this.#d.clock,
      logger: log,
      ...(this.#d.registry ? { registry: this.#d.registry } : {}),
      onEvent: (e) => {
        const rec = coordinatorAudit(e);
        if (rec) this.#d.audit(rec.type, rec.data);
        if (e.type === 'backend-failed') {
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

  #reason = '';

  #leaderChanged(info: LeaderInfo): void {
    if (info.holder === this.#lastLeader.holder && info.epoch === this.#lastLeader.epoch) return;
    this.#lastLeader = { holder: info.holder, epoch: info.epoch };
    // Another node leads: this node's failed activations (and its backoff) are history — the audit keeps
    // them; as a standby its health is its replica's. The next election it wins tries afresh.
    if (info.holder !== null && info.holder !== this.#d.nodeId && this.#lastActivateError) {
      this.#lastActivateError = undefined;
      this.#activateFailures = 0;
    }
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
      try {
        const report = await this.#coordinator!.activate(epoch);
        this.#lastActivation = Object.fromEntries(
          report.phases.map((ph) => [ph.phase, Math.round(ph.durationMs)]),
        );
        for (const ph of report.phases)
          this.#d.metrics.activationPhaseSeconds.observe(
            { app: this.name, phase: ph.phase },
            ph.durationMs / 1000,
          );
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e));
      }
      if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
      return err;
    });
    const seconds = (this.#d.clock.now() - started) / 1000;
    this.#d.metrics.transitionSeconds.observe({ app: this.name, transition: 'activate' }, seconds);
    if (error) {
      // A node that cannot become active (a failed phase or onActive) hands leadership on, and sits the
      // election out for longer each time it fails again (a broken disk, a port taken, a missing binary), so a
      // lone node with a persistent fault retries with backoff instead of several times a second.
      this.#activateFailures++;
      this.#lastActivateError = { at: new Date(this.#d.clock.wallNow()).toISOString(), error: error.message };
      const cooldownMs = this.#activationBackoffMs();
      this.#d.audit(
        'app.activate_failed',
        { epoch, error: error.message, attempt: this.#activateFailures, retryInMs: cooldownMs },
        this.#activateFailures > 1 ? 'error' : 'warn',
      );
      this.#epoch = 0;
      this.#setRole(AppRole.Passive);
      if (this.#election?.isLeader()) await this.#election.stepDown({ cooldownMs });
      return;
    }
    if (ac.signal.aborted) return; // a deactivate is queued behind us
    this.#activateFailures = 0;
    this.#lastActivateError = undefined;
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
    const started = this.#d.clock.now();
    await tracer.startActiveSpan('gc.app.deactivate', async (span) => {
      span.setAttributes({
        'gc.app': this.name,
        'gc.node': this.#d.nodeId,
        'gc.epoch': epoch,
        'gc.reason': reason,
      });
      let err: Error | undefined;
      this.#reason = reason;
      await this.#coordinator?.deactivate(reason).catch((e: unknown) => {
        err = e instanceof Error ? e : new Error(String(e));
      });
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

  /**
   * How long this node stays out of the election after its n-th activation failure in a row: the election's
   * cooldown for the first, then doubling, up to ten TTLs (at least 30 s).
   */
  #activationBackoffMs(): number {
    const ttlMs = this.#o.election.ttlMs ?? 3000;
    const base = this.#o.election.cooldownMs ?? this.#o.election.renewIntervalMs ?? Math.round(ttlMs / 3);
    const cap = Math.max(30_000, 10 * ttlMs);
    return Math.min(cap, base * 2 ** Math.min(20, this.#activateFailures - 1));
  }

  async simulateCrash(): Promise<{ txid: number; checksum: string } | undefined> {
    if (this.mode !== AppMode.ActivePassive || !this.#election?.isLeader()) return undefined;
    // A drill loses nothing: the last commits reach the stream before the node "dies". What they are is the
    // drill's proof that the next leader took over with the data.
    const position = await this.#db?.primary?.sync().catch((err: unknown) => {
      this.#d.logger.warn('drill: last commits not acknowledged before the simulated crash', { err });
      return undefined;
    });
    this.#current?.abort();
    // Stop acting at once without releasing the lease: the standbys detect the failure by the lease's
    // expiry, as after a crash. This node sits the election out meanwhile (the election's cooldown, three
    // TTLs), and deactivates on the `stepped-down` event like any step-down.
    const ttlMs = this.#o.election.ttlMs ?? 3000;
    await this.#election.stepDown({ release: false, cooldownMs: 3 * ttlMs });
    return position ? { txid: position.txid, checksum: position.checksum } : undefined;
  }

  async stepDown(): Promise<void> {
    if (this.mode !== AppMode.ActivePassive || !this.#election) return;
    const election = this.#election;
    // Stop acting first, then release the lease, so the standby never overlaps with us.
    this.#current?.abort();
    const deactivated = this.#enqueue(() => this.#deactivate('step-down'));
    // But a deactivation that hangs (a backend that will not stop, a database demotion waiting on a NATS
    // server in trouble) must not keep the lease renewed, and the app down, for as long as it hangs: after a
    // TTL this node stops renewing without releasing, so a standby takes over when the lease runs out, with a
    // higher epoch that fences whatever this node still does — as when a leader misses its renew deadline.
    const boundMs = this.#o.election.ttlMs ?? 3000;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const inTime = await Promise.race([
      deactivated.then(() => true),
      new Promise<false>((resolve) => (timer = this.#d.clock.setTimeout(() => resolve(false), boundMs))),
    ]);
    if (timer !== undefined) this.#d.clock.clearTimeout(timer);
    if (inTime) return election.stepDown();
    this.#d.audit(
      'app.stepdown_slow',
      { epoch: this.#epoch, boundMs, detail: 'deactivation still running: the lease is left to run out' },
      'warn',
    );
    // Sit the election out for three TTLs, so a standby wins the lease when it runs out, not this node
    // (its activation would wait behind the deactivation that hangs, while its election renewed the lease).
    await election.stepDown({ release: false, cooldownMs: 3 * boundMs });
    await deactivated;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // A failed start was reported by start() itself; stopping goes on regardless.
    await this.#starting?.catch(() => undefined);
    this.#current?.abort();
    for (const c of this.#started) c.stopping?.();
    await this.#enqueue(() => this.#deactivate('shutdown'));
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#election?.close();
    if (this.#election) this.#d.unregisterHealth(`activation-${this.name}`);
    await this.#coordinator?.close();
    for (const c of this.#started.splice(0).reverse()) {
      if (c.health) this.#d.unregisterHealth(`${c.name}-${this.name}`);
      await c
        .stop?.()
        .catch((err: unknown) => this.#d.logger.error('component stop failed', { component: c.name, err }));
    }
    await this.#rpc?.close();
    await Promise.allSettled([this.#locks?.then((l) => l.close()), this.#events?.then((e) => e.close())]);
    if (this.#starting) await this.#hooks.run('onStop', { app: this.name, nodeId: this.#d.nodeId });
    this.#setRole(AppRole.Stopped);
    if (this.#starting) this.#d.audit('app.stopped', {});
  }
}
