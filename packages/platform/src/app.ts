import { ClosedError, ConfigError, type AppComponent, type Clock, type Epoch } from '@gc/core';
import type { Election, LeaderInfo } from '@gc/election';
import type { ActiveCoordinator } from '@gc/backends';
import { createEvents, type Events } from '@gc/events';
import type { SnapshotInfo } from '@gc/snapshot';
import type { Primary, ReplicatedDatabase, Replica } from '@gc/wal';
import { createLocks, type Locks } from '@gc/locks';
import type { HandleOptions, Handler, RpcServer } from '@gc/rpc';
import type { Ring } from '@gc/ring';
import { Kvm, type KV } from '@nats-io/kv';
import { CONTROL_METHOD_PREFIX } from './admin.js';
import type { AppDeps } from './app-deps.js';
import { appStatus } from './app-status.js';
import { AppTransitions } from './app-transitions.js';
import {
  appCoordinator,
  appElection,
  appRpcServer,
  componentContext,
  startComponents,
} from './app-wiring.js';
import { composeComponents, hooksComponent } from './components.js';
import { HookRunner } from './hooks.js';
import type { PlacedApp } from './placement/agent.js';
import { PLACEMENT_STEPDOWN_COOLDOWN_MS, PlacementGate } from './app-placement.js';
import { ringComponent, type RingComponent } from './ring.js';
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

export type { AppDeps } from './app-deps.js';

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
  readonly #t: AppTransitions;
  #election: Election | undefined;
  #unsubscribe: Array<() => void> = [];
  #kv: Promise<KV> | undefined;
  #locks: Promise<Locks> | undefined;
  #events: Promise<Events> | undefined;
  #lastLeader: { holder: string | null; epoch: Epoch } = { holder: null, epoch: 0 };
  #hookFailures = 0;
  #starting: Promise<void> | undefined;
  #rpc: RpcServer | undefined;
  #coordinator: ActiveCoordinator | undefined;
  #components: AppComponent[] = [];
  #started: AppComponent[] = [];
  #db: ReplicatedDatabase | undefined;
  #ring: RingComponent | undefined;
  #pendingHandlers: Array<(server: RpcServer) => void> = [];
  #stopping: Promise<void> | undefined;
  /** Placement's say on where the app runs (apps with `placement` only). */
  readonly #gate: PlacementGate | undefined;

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
    this.#t = new AppTransitions({
      name,
      mode: o.mode,
      electionOptions: o.election,
      d,
      election: () => this.#election,
      coordinator: () => this.#coordinator,
      rpc: () => this.#rpc,
      stopping: () => this.#stopping !== undefined,
    });
    this.#gate = o.placement
      ? new PlacementGate({
          name,
          o,
          d,
          t: this.#t,
          election: () => this.#election,
          db: () => this.#db,
          hooks: this.#hooks,
          // Once its components run (the coordinator exists), until it stops.
          running: () => this.#coordinator !== undefined && this.#stopping === undefined,
          stepDown: () => this.stepDown(),
        })
      : undefined;
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
    return this.#t.role;
  }

  isActive(): boolean {
    return this.#t.isActive();
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
    return this.#t.role === AppRole.Active ? this.#t.epoch : 0;
  }

  leader(): LeaderInfo | null {
    return this.#election ? this.#election.leader() : null;
  }

  on<H extends HookName>(hook: H, fn: AppHooks[H]): () => void {
    return this.#hooks.add(hook, fn);
  }

  waitForActive(timeoutMs: number): Promise<void> {
    return this.#t.waitForActive(timeoutMs);
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
    return appStatus({
      name: this.name,
      mode: this.mode,
      role: this.#t.role,
      leader: this.#election?.leader(),
      hookFailures: this.#hookFailures,
      activation: this.#t.activation,
      recoveryBudgetMs: this.#o.recoveryBudgetMs,
      started: this.#started,
      db: this.#db,
      lastActivation: this.#t.lastActivation,
      placement: this.#gate?.status(),
    });
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
    this.#rpc = appRpcServer(
      {
        name: this.name,
        mode: this.mode,
        role: () => this.#t.role,
        epoch: () => this.#t.epoch,
        ring: () => this.#ring?.ring,
      },
      this.#d,
    );
    for (const register of this.#pendingHandlers.splice(0)) register(this.#rpc);
    this.#d.appsChanged();
    this.#t.setRole(AppRole.Passive);
    this.#d.audit('app.started', { mode: this.mode });
    await this.#startComponents();
    if (this.mode !== AppMode.ActivePassive) {
      // Pool and ring: every node that runs the app is active (a ring member joined the ring in its start);
      // with placement, only once the scheduler places it here.
      if (this.#gate) return this.#gate.apply();
      await this.#t.enqueue(() => this.#t.activate(0, 'started'));
      return;
    }
    // A node that cannot become active is broken even while another node leads: it is no standby.
    this.#d.registerHealth(`activation-${this.name}`, () => Promise.resolve(this.#t.activationHealth()));
    // With placement, the node contends only once the scheduler places the app here.
    const election = await appElection(
      this.name,
      this.#o.placement ? { ...this.#o, election: { ...this.#o.election, observeOnly: true } } : this.#o,
      this.#d,
    );
    this.#election = election;
    this.#unsubscribe.push(
      election.on(
        'acquired',
        ({ epoch, via }) => void this.#t.enqueue(() => this.#t.activate(epoch, `elected (${via})`)),
      ),
      election.on('lost', ({ reason, detail }) => {
        this.#t.abort();
        void this.#t.enqueue(() => this.#t.deactivate(`lost: ${reason}${detail ? ` (${detail})` : ''}`));
      }),
      election.on('stepped-down', () => {
        this.#t.abort();
        void this.#t.enqueue(() => this.#t.deactivate('step-down'));
      }),
      election.on('leader', (info) => this.#leaderChanged(info)),
    );
    this.#leaderChanged(election.leader());
    this.#gate?.apply();
  }

  /** The app as the placement agent sees it; undefined without `placement`. */
  placed(): PlacedApp | undefined {
    return this.#gate?.placed();
  }

  /**
   * Composes the app's components (database → VIP → backend → its own → onActive/onPassive hooks), starts
   * them (standby duties, health checks) and builds the coordinator that runs their steps as the active
   * sequence: each step fenced by the epoch, timed, audited, and undone in reverse when a later one fails.
   */
  async #startComponents(): Promise<void> {
    const { components, database } = await composeComponents(this.name, this.#o, {
      connectOptions: this.#d.connectOptions,
      logger: this.#d.logger,
      clock: this.#d.clock,
    });
    this.#db = database;
    if (this.mode === AppMode.Ring) this.#ring = ringComponent(this.#o.ring ?? {}, this.#hooks);
    this.#components = [
      ...(this.#ring ? [this.#ring] : []),
      ...components,
      hooksComponent(this.#hooks, { app: this.name, nodeId: this.#d.nodeId, reason: () => this.#t.reason }),
    ];
    const stepDown = () => this.stepDown();
    const context = { name: this.name, epoch: () => this.#t.epoch, election: () => this.#election, stepDown };
    await startComponents(
      this.name,
      this.#components,
      this.#started,
      (c) => componentContext(c, context, this.#d),
      this.#d,
    );
    this.#coordinator = appCoordinator(
      { name: this.name, mode: this.mode, components: this.#components, stepDown },
      this.#d,
    );
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

  #leaderChanged(info: LeaderInfo): void {
    if (info.holder === this.#lastLeader.holder && info.epoch === this.#lastLeader.epoch) return;
    this.#lastLeader = { holder: info.holder, epoch: info.epoch };
    // Another node leads: this node's failed activations (and its backoff) are history.
    if (info.holder !== null && info.holder !== this.#d.nodeId) this.#t.forgetFailures();
    this.#d.audit('app.leader', { leader: info.holder, epoch: info.epoch });
    void this.#hooks.run('onLeaderChange', { app: this.name, leader: info.holder, epoch: info.epoch });
  }

  async simulateCrash(): Promise<{ txid: number; checksum: string } | undefined> {
    if (this.mode !== AppMode.ActivePassive || !this.#election?.isLeader()) return undefined;
    // A drill loses nothing: the last commits reach the stream before the node "dies". What they are is the
    // drill's proof that the next leader took over with the data.
    const position = await this.#db?.primary?.sync().catch((err: unknown) => {
      this.#d.logger.warn('drill: last commits not acknowledged before the simulated crash', { err });
      return undefined;
    });
    this.#t.abort();
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
    this.#t.abort();
    const deactivated = this.#t.enqueue(() => this.#t.deactivate('step-down'));
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
    // With placement this node may be the preferred leader, which contends without delay: its cooldown must
    // outlast the others' priority wait, or a step-down would hand the lead back to itself.
    if (inTime) return election.stepDown(this.#gate ? { cooldownMs: PLACEMENT_STEPDOWN_COOLDOWN_MS } : {});
    this.#d.audit(
      'app.stepdown_slow',
      { epoch: this.#t.epoch, boundMs, detail: 'deactivation still running: the lease is left to run out' },
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
    this.#gate?.close();
    // A failed start was reported by start() itself; stopping goes on regardless.
    await this.#starting?.catch(() => undefined);
    this.#t.abort();
    for (const c of this.#started) c.stopping?.();
    await this.#t.enqueue(() => this.#t.deactivate('shutdown'));
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
    this.#t.setRole(AppRole.Stopped);
    if (this.#starting) this.#d.audit('app.stopped', {});
  }
}
