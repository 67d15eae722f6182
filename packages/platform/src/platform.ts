import { mkdirSync } from 'node:fs';
import {
  ClosableResource,
  ConfigError,
  connect,
  createLogger,
  resourceNames,
  startIdleGc,
  validateNodeId,
  type AuditSeverity,
  type IdleGc,
  type PlatformResourceNames,
} from '@gc/core';
import { createAudit, type Audit } from '@gc/audit';
import { createEvents, type Events } from '@gc/events';
import { createLocks, type Locks } from '@gc/locks';
import { createMembership, type Member, type Membership } from '@gc/membership';
import { createHealth, startHealthServer, type HealthServer } from '@gc/health';
import { auditSeverity } from './audit.js';
import { createRpcClient, type AppApi, type RpcClient, type RpcServer } from '@gc/rpc';
import { createRingRouter, type RingRouter } from '@gc/ring';
import type { NatsConnection } from '@nats-io/nats-core';
import { Registry } from 'prom-client';
import { registerProcessMetrics } from './process-metrics.js';
import { appControlHandlers, serveControl } from './admin.js';
import { appControl } from './app-control.js';
import { AppImpl } from './app.js';
import { forwardMemberEvents } from './member-events.js';
import { NodePlacement } from './placement/node.js';
import { effectiveLabels, type LabelChanges } from './placement/labels.js';
import { DEFAULT_MIGRATION_LIMITS } from './placement/gate.js';
import type { NodeLabels } from './placement/records.js';
import type { NodeLabelsResult, PlacementControl } from './placement/runtime.js';
import { createPlatformMetrics, type PlatformMetrics } from './metrics.js';
import { appOptions, checkLabels, isConnection, platformOptions } from './options.js';
import type { App, AppOptions, HookFailure, Platform, PlatformOptions, PlatformStatus } from './types.js';

export { defaultAppOptions, worstCaseDetectionMs } from './options.js';

class PlatformImpl extends ClosableResource implements Platform {
  readonly name: string;
  readonly nodeId: string;
  readonly nc: NatsConnection;
  readonly registry: Registry;
  readonly health;
  readonly logger;
  readonly #o: PlatformOptions;
  readonly #ownsConnection: boolean;
  readonly #names: PlatformResourceNames;
  readonly #metrics: PlatformMetrics;
  readonly #apps = new Map<string, AppImpl>();
  readonly #failureListeners = new Set<(f: HookFailure) => void>();
  readonly #rpc: RpcClient;
  /** Key routing to ring apps' owners (other apps fall back to rendezvous hashing). */
  readonly #router: RingRouter;
  readonly audit: Audit;
  #membership: Membership | undefined;
  #memberWatch: { stop(): void } | undefined;
  #locks: Promise<Locks> | undefined;
  #events: Promise<Events> | undefined;
  #http: HealthServer | undefined;
  #control: RpcServer | undefined;
  #started = false;
  #idleGc: IdleGc | undefined;
  readonly #placement: NodePlacement;
  /** An operator's label changes for this node (`labels.<node>` of the placement bucket). */
  #labelOverride: NodeLabels | undefined;

  constructor(
    o: PlatformOptions,
    nc: NatsConnection,
    ownsConnection: boolean,
    names: PlatformResourceNames,
    audit: Audit,
    router: RingRouter,
  ) {
    super();
    this.audit = audit;
    this.#router = router;
    this.#o = o;
    this.name = o.name;
    this.nodeId = o.nodeId;
    this.nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#names = names;
    this.logger = (o.logger ?? createLogger({ name: 'gc' })).child({ platform: o.name, node: o.nodeId });
    this.registry = o.registry ?? new Registry();
    if (o.processMetrics ?? !o.registry) registerProcessMetrics(this.registry);
    this.#metrics = createPlatformMetrics(this.registry);
    this.health = createHealth({ clock: o.clock, logger: this.logger });
    this.#placement = new NodePlacement({
      nc,
      platform: o.name,
      nodeId: o.nodeId,
      dataDir: o.dataDir,
      membership: () => this.#membership,
      clock: o.clock,
      logger: this.logger,
      registry: this.registry,
      health: this.health,
      audit: (type, data, severity) => this.#audit(undefined, type, data, severity),
      apps: () => [...this.#apps.values()],
      members: async () => (await this.members()).map((m) => ({ nodeId: m.nodeId, labels: m.labels })),
      limits: { ...DEFAULT_MIGRATION_LIMITS, ...o.migrations },
      applyLabelOverride: (override) => {
        if (JSON.stringify(override ?? null) === JSON.stringify(this.#labelOverride ?? null)) return;
        this.#labelOverride = override;
        this.#audit(undefined, 'node.labels', { labels: this.labels(), by: override?.by ?? 'configuration' });
        this.#publishLabels().catch((err: unknown) =>
          this.logger.warn('labels set by an operator not published to membership', { err }),
        );
      },
    });
    this.#rpc = createRpcClient(nc, {
      platform: o.name,
      caller: `${o.name}/${o.nodeId}`,
      route: router.route,
      registry: this.registry,
      logger: this.logger,
    });
    this.#watchConnection();
    this.health.register(
      'nats',
      () =>
        nc.isClosed()
          ? 'NATS connection closed'
          : this.#link.connected
            ? true
            : `disconnected from NATS since ${new Date(this.#link.sinceMs).toISOString()} (reconnecting)`,
      // Red in /health while disconnected, but not in readiness: readiness gates the RPC pools, which the
      // reconnect restores by itself; a stale check would keep them withdrawn up to one interval after it.
      { intervalMs: 2000, timeoutMs: 1000, readiness: false },
    );
    this.health.onChange((change) => {
      for (const app of this.#apps.values()) void app.runHook('onHealthChange', change);
    });
  }

  /** The connection's state as its status events tell it (a reconnecting connection is not closed). */
  #link: { connected: boolean; sinceMs: number; server: string | undefined } = {
    connected: true,
    sinceMs: Date.now(),
    server: undefined,
  };

  #watchConnection(): void {
    this.#link.server = this.nc.info?.server_name;
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') {
          this.#link = {
            connected: s.type === 'reconnect',
            sinceMs: Date.now(),
            server: this.nc.info?.server_name ?? this.#link.server,
          };
          this.logger[s.type === 'disconnect' ? 'warn' : 'info'](`nats.${s.type}`, {
            server: this.#link.server,
          });
        }
      }
    })().catch(() => undefined); // the iterator ends when the connection closes
  }

  /** Every state change goes to the audit stream (never throws into the caller) and the log. */
  #audit(app: string | undefined, type: string, data: Record<string, unknown>, given?: AuditSeverity): void {
    const severity = given ?? auditSeverity(type);
    this.logger[severity](type, { ...(app ? { app } : {}), ...data });
    const epoch = typeof data.epoch === 'number' && data.epoch > 0 ? data.epoch : undefined;
    void this.audit.record({ type, ...(app ? { app } : {}), ...(epoch ? { epoch } : {}), data, severity });
  }

  app(name: string, partial: Partial<AppOptions> = {}): App {
    if (this.closing) throw new ConfigError(`apps.${name}`, `platform ${this.name} is closed`);
    const names = this.#names.app(name);
    if (this.#apps.has(name))
      throw new ConfigError(`apps.${name}`, 'an app with this name is already declared on this node');
    const opts = appOptions(name, partial, { name: this.name, nodeId: this.nodeId, nats: this.#o.nats });
    const app = new AppImpl(
      name,
      opts,
      {
        nc: this.nc,
        connectOptions: isConnection(this.#o.nats)
          ? undefined
          : { name: `gc-${this.name}-${this.nodeId}-wal`, ...this.#o.nats },
        nodeId: this.nodeId,
        names,
        dataDir: this.#o.dataDir,
        clock: this.#o.clock,
        logger: this.logger.child({ app: name }),
        metrics: this.#metrics,
        registry: this.registry,
        onHookFailure: (f) => {
          this.#metrics.hookFailures.inc({ app: f.app, hook: f.hook, timed_out: String(f.timedOut) });
          this.#audit(f.app, 'hook.failed', { hook: f.hook, error: f.error.message, timedOut: f.timedOut });
          for (const l of this.#failureListeners) l(f);
        },
        // Readiness, not health: a broken replica of one app must not take this node's instances of the
        // other apps out of the RPC pool.
        healthy: () => this.health.report().ready,
        appsChanged: () =>
          void this.#membership
            ?.updateApps(this.#startedApps())
            .catch((err: unknown) => this.logger.warn('membership update failed', { err })),
        audit: (type, data, severity) => this.#audit(name, type, data, severity),
        registerHealth: (check, fn) =>
          this.health.register(check, fn, {
            intervalMs: 2000,
            timeoutMs: 1500,
            critical: true,
            readiness: false,
          }),
        unregisterHealth: (check) => this.health.unregister(check),
      },
      this.#o.hookTimeoutMs,
    );
    const control = appControl(app, this.nodeId, (type, data) => this.#audit(name, type, data));
    for (const c of appControlHandlers(control)) app.handleControl(c.method, c.fn, c.opts);
    this.#apps.set(name, app);
    if (this.#started) {
      void app.start().catch((err: unknown) => this.logger.error('app start failed', { app: name, err }));
      // A failed start is logged and shown by the `placement` health check.
      if (opts.placement) this.#placement.start().catch(() => undefined);
    }
    return app;
  }

  apps(): App[] {
    return [...this.#apps.values()];
  }

  #startedApps(): string[] {
    return [...this.#apps.values()]
      .filter((a) => a.role() !== 'stopped')
      .map((a) => a.name)
      .sort();
  }

  locks(): Promise<Locks> {
    this.#locks ??= createLocks(this.nc, {
      bucket: this.#names.platformLocks,
      owner: this.nodeId,
      clock: this.#o.clock,
      logger: this.logger,
      registry: this.registry,
      onEvent: (e) => this.#audit(undefined, `lock.${e.type}`, { ...e }),
    });
    return this.#locks;
  }

  events(): Promise<Events> {
    this.#events ??= createEvents(this.nc, {
      platform: this.name,
      nodeId: this.nodeId,
      logger: this.logger,
      registry: this.registry,
    });
    return this.#events;
  }

  async members(): Promise<Member[]> {
    if (!this.#membership)
      throw new ConfigError('', `platform ${this.name} is not started: call start() before members()`);
    return this.#membership.members();
  }

  api(app: string): AppApi {
    this.#names.app(app);
    return this.#rpc.api(app);
  }

  labels(): Record<string, string> {
    return effectiveLabels(this.#o.labels, this.#labelOverride);
  }

  setLabels(labels: Record<string, string>): Promise<void> {
    checkLabels(labels);
    this.#o.labels = { ...labels };
    this.#audit(undefined, 'node.labels', { labels });
    return this.#publishLabels();
  }

  updateNodeLabels(
    nodeId: string,
    changes: LabelChanges,
    o?: { reset?: boolean },
  ): Promise<NodeLabelsResult> {
    return this.#placement.control().label(nodeId, changes, o);
  }

  /** Publishes the labels in force (configuration + an operator's changes) to membership. */
  #publishLabels(): Promise<void> {
    return this.#membership ? this.#membership.updateLabels(this.labels()) : Promise.resolve();
  }

  async removeApp(name: string): Promise<void> {
    const app = this.#apps.get(name);
    if (!app) return;
    await app.stop();
    this.#apps.delete(name);
    this.#placement.refresh();
  }

  placement(): PlacementControl {
    return this.#placement.control();
  }

  onHookFailure(fn: (f: HookFailure) => void): () => void {
    this.#failureListeners.add(fn);
    return () => this.#failureListeners.delete(fn);
  }

  status(): PlatformStatus {
    return {
      platform: this.name,
      nodeId: this.nodeId,
      labels: this.labels(),
      server: {
        version: this.nc.info?.version,
        connected: !this.nc.isClosed() && this.#link.connected,
        since: this.#link.sinceMs,
        ...(this.#link.server ? { name: this.#link.server } : {}),
      },
      apps: [...this.#apps.values()].map((a) => a.status()),
      health: this.health.report(),
    };
  }

  /** Status after refreshing the parts that need I/O (backend state). */
  async refreshedStatus(): Promise<PlatformStatus> {
    await Promise.all([...this.#apps.values()].map((a) => a.refreshStatus()));
    return this.status();
  }

  httpUrl(): string | undefined {
    return this.#http?.url;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#o.idleGc) this.#idleGc = startIdleGc({ clock: this.#o.clock, logger: this.logger });
    if (this.#o.http !== false) {
      this.#http = await startHealthServer({
        health: this.health,
        registry: this.registry,
        status: () => this.refreshedStatus(),
        host: this.#o.http.host ?? '127.0.0.1',
        port: this.#o.http.port ?? 0,
        ...(this.#o.http.routes ? { routes: this.#o.http.routes } : {}),
      });
    }
    // Join with the labels in force: an operator's changes (`gc node label`) apply over the configured ones.
    await this.#placement.watchLabels();
    this.#membership = await createMembership(this.nc, {
      platform: this.name,
      nodeId: this.nodeId,
      labels: this.labels(),
      apps: [...this.#apps.keys()].sort(),
      heartbeatMs: this.#o.heartbeatMs,
      clock: this.#o.clock,
      logger: this.logger,
      registry: this.registry,
    });
    const watch = await this.#membership.watch({ initial: false });
    this.#memberWatch = watch;
    forwardMemberEvents(watch, {
      apps: this.#apps,
      audit: (type, data) => this.#audit(undefined, type, data),
      logger: this.logger,
    });
    this.#control = serveControl(
      this.nc,
      this.name,
      { nodeId: this.nodeId, status: () => this.refreshedStatus() },
      { logger: this.logger, clock: this.#o.clock, registry: this.registry },
    );
    const placed = [...this.#apps.values()].some((a) => a.placed());
    if (placed) await this.#placement.clearOwnDeclaration();
    await Promise.all([...this.#apps.values()].map((a) => a.start()));
    if (placed && !this.closing) await this.#placement.start();
  }

  protected async closeResources(): Promise<void> {
    this.#idleGc?.stop();
    await this.#control?.close();
    // Placement first: the scheduler stops deciding, and this node's declaration goes.
    await this.#placement.close();
    for (const app of [...this.#apps.values()].reverse()) {
      await app.stop().catch((err: unknown) => this.logger.error('app stop failed', { app: app.name, err }));
    }
    await this.#rpc.close();
    await this.#router.close();
    this.#memberWatch?.stop();
    await this.#membership?.close();
    await Promise.allSettled([this.#locks?.then((l) => l.close()), this.#events?.then((e) => e.close())]);
    await this.audit.close();
    await this.#http?.close();
    await this.health.close();
    if (this.#ownsConnection) await this.nc.close();
  }
}

/**
 * Creates a platform on this node: validates names, connects to NATS (or uses the given connection),
 * and sets up health, metrics and the HTTP endpoints. Call `app(...)` to declare apps, then `start()`.
 *
 * @example
 * const platform = await createPlatform({ name: 'prod', nodeId: 'node-a', nats: { servers: 'nats://127.0.0.1:4222' } });
 * const orders = platform.app('orders', { mode: 'active-passive' });
 * orders.on('onActive', ({ epoch }) => console.log('serving with epoch', epoch));
 * await platform.start();
 */
export async function createPlatform(
  opts: Partial<PlatformOptions> & Pick<PlatformOptions, 'name' | 'nodeId'>,
): Promise<Platform> {
  const names = resourceNames(opts.name);
  validateNodeId(opts.nodeId);
  const o = platformOptions(opts);
  mkdirSync(o.dataDir, { recursive: true });
  const owns = !isConnection(o.nats);
  const nc = isConnection(o.nats)
    ? o.nats
    : await connect({ name: `gc-${opts.name}-${opts.nodeId}`, ...o.nats });
  try {
    const audit = await createAudit(nc, {
      platform: opts.name,
      nodeId: opts.nodeId,
      clock: o.clock,
      ...(o.logger ? { logger: o.logger } : {}),
    });
    const router = await createRingRouter(nc, {
      platform: opts.name,
      clock: o.clock,
      logger: (o.logger ?? createLogger({ name: 'gc' })).child({ platform: opts.name, node: opts.nodeId }),
    });
    return new PlatformImpl(o, nc, owns, names, audit, router);
  } catch (err) {
    if (owns) await nc.close();
    throw err;
  }
}
