// The platform facade's public types: the node's options, its status and its apps' status, and the `App`
// and `Platform` interfaces. App options and hook types live in app-options.ts and hook-types.ts and are
// re-exported from here.
import type { Clock, Closable, ConnectOptions, Epoch, Logger } from '@gc/core';
import type { LeaderInfo } from '@gc/election';
import type { Audit } from '@gc/audit';
import type { BackendStatus } from '@gc/backends';
import type { Primary, Replica, ReplicationStatus } from '@gc/wal';
import type { SnapshotInfo } from '@gc/snapshot';
import type { Events } from '@gc/events';
import type { Locks } from '@gc/locks';
import type { Member } from '@gc/membership';
import type { AppApi, HandleOptions, Handler } from '@gc/rpc';
import type { Ring } from '@gc/ring';
import type { Health, HealthReport, RouteHandler } from '@gc/health';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import type { AppMode, AppOptions } from './app-options.js';
import type { NodeLabelsResult, PlacementControl } from './placement/runtime.js';
import type { LabelChanges } from './placement/labels.js';
import type { MigrationLimits } from './placement/gate.js';
import type { AppHooks, HookFailure, HookName } from './hook-types.js';

export { AppMode } from './app-options.js';
export type { AppElectionOptions, AppOptions, AppRingOptions } from './app-options.js';
export type {
  AppHooks,
  HookFailure,
  HookName,
  LeaderChange,
  MemberChange,
  MigrationAnswer,
  MigrationCompleteContext,
  MigrationContext,
  PartitionOwnContext,
  PlacementInvalidContext,
  PartitionReleaseContext,
  TransitionContext,
} from './hook-types.js';

/** The role of this node for an app. */
export const AppRole = {
  /** Not started or stopped. */
  Stopped: 'stopped',
  /** Started, not active (a standby in active-passive). */
  Passive: 'passive',
  /** Running onActive (promotion phases). */
  Activating: 'activating',
  /** Active: the leader in active-passive, always in pool. */
  Active: 'active',
  /** Running onPassive after losing leadership. */
  Deactivating: 'deactivating',
} as const;
/** One of {@link AppRole}. */
export type AppRole = (typeof AppRole)[keyof typeof AppRole];

/** Options of {@link createPlatform}. */
export interface PlatformOptions {
  /** Platform name (validated: lowercase letters, digits, `-`). */
  name: string;
  /** This node's id (validated: letters, digits, `-`, `_`). */
  nodeId: string;
  /** A NATS connection the caller owns, or connect options (the platform then owns and closes it). */
  nats: NatsConnection | Partial<ConnectOptions>;
  /**
   * Node labels, published with membership (for placement and discovery). An operator's changes
   * (`updateNodeLabels`, `gc node label`) apply over them. Default none.
   */
  labels: Record<string, string>;
  /**
   * Limits of automatic migrations, used while this node is the placement scheduler: least time between
   * two of one app (`cooldownMs`, default 30 s; an app's `migrate.cooldownMs` wins) and how many apps may
   * migrate at once (`maxConcurrentMigrations`, default 4). Moves and drains are not limited by them.
   */
  migrations?: Partial<MigrationLimits>;
  /**
   * HTTP endpoints (`/health`, `/ready`, `/status`, `/metrics`, plus extra `routes` such as the
   * dashboard); `false` for none. Default `{ host: '127.0.0.1', port: 0 }`.
   */
  http: false | { host?: string; port?: number; routes?: Record<string, RouteHandler> };
  /** Folder for this node's durable state (highest epochs seen). Default `.gc/<platform>/<nodeId>`. */
  dataDir: string;
  /** Membership heartbeat interval, in ms; a crashed node is seen as gone after about 3 heartbeats. Default 1000. */
  heartbeatMs: number;
  /** Default timeout of every hook call, in ms. Default 30000. */
  hookTimeoutMs: number;
  /**
   * Prometheus registry for every metric. Default a new registry, which also gets this process's
   * resource metrics (`process_resident_memory_bytes`, `process_cpu_*_seconds_total`, `nodejs_heap_*`,
   * `nodejs_eventloop_utilization`, …). A registry you pass gets them only with
   * {@link PlatformOptions.processMetrics}.
   */
  registry?: Registry;
  /**
   * Adds the process and Node.js runtime metrics to {@link PlatformOptions.registry} (read at scrape
   * time; no timers). Default true when the platform creates its registry, false when you pass one (you
   * may already collect prom-client's default metrics there; the same names twice throw).
   */
  processMetrics?: boolean;
  /**
   * Keeps the process's heap compact while it is idle: once a minute the event loop's utilization is looked
   * at, and after an idle minute (under 5 %) V8 is asked for a full collection (see `startIdleGc`).
   * Without it an idle node's resident memory creeps up for many minutes with garbage V8 collects late.
   * It sets V8's `--expose-gc` flag at run time, so it is for processes
   * gc owns: default false; the `gc` daemon turns it on.
   */
  idleGc?: boolean;
  /** Time source. Default realClock. */
  clock: Clock;
  /** Logger. Default `createLogger({ name: 'gc' })` bound to the node. */
  logger?: Logger;
}

/** What one app looks like on this node (in `/status` and `gc status`). */
export interface AppStatus {
  name: string;
  mode: AppMode;
  role: AppRole;
  /** Current leader as this node sees it (active-passive). */
  leader: string | null;
  epoch: Epoch;
  /** Hook failures since start. */
  hookFailures: number;
  /**
   * Present while this node's activation attempts fail (until one succeeds, or another node leads): how many
   * failed in a row and the last error. Each failure keeps the node out of the election for longer (backoff up
   * to ten TTLs); the node's health is red meanwhile (`activation-<app>`).
   */
  activation?: { failures: number; lastError: { at: string; error: string } };
  /** The app's recovery-time budget, when it has one (ms). */
  recoveryBudgetMs?: number;
  /** The backend on this node, when the app has one. */
  backend?: Pick<BackendStatus, 'kind' | 'state' | 'pid' | 'restarts'>;
  /** The virtual IP, when the app has one: whether this node holds it. */
  vip?: { address: string; held: boolean };
  /** SQLite replication on this node, when the app has a database. */
  replication?: ReplicationStatus;
  /** Status of the app's other components (see `AppOptions.components`), by name. */
  components?: Record<string, unknown>;
  /** Durations of the last activation's phases on this node, in ms. */
  lastActivation?: Record<string, number>;
  /**
   * Apps with `placement`: whether the scheduler placed the app on this node, the preferred leader, and why
   * (`waiting for the scheduler`, `not placed here: labels do not match "disk=ssd"`, `unsatisfiable: …`).
   */
  placement?: {
    placed: boolean;
    leader?: string;
    handoverReady: boolean;
    reason: string;
    generation: number;
    /** Active-passive: whether this node contends for the lead now (a candidate, not cooling down). */
    contending?: boolean;
  };
}

/** This node's view of the platform. */
export interface PlatformStatus {
  platform: string;
  nodeId: string;
  labels: Record<string, string>;
  /**
   * The NATS server this node is connected to: its version and name (`server_name`), whether the
   * connection is up (false while it reconnects), and since when (wall-clock ms of the last connect,
   * disconnect or reconnect).
   */
  server: { version: string | undefined; connected: boolean; since?: number; name?: string };
  apps: AppStatus[];
  health: HealthReport;
}

/** An app on this node. */
export interface App {
  readonly name: string;
  readonly mode: AppMode;
  /** The app's own KV bucket `{platform}_{app}`; no other app's data is reachable through it. */
  kv(): Promise<KV>;
  /** The app's locks and semaphores in `{platform}_{app}_locks` (owner = this node, fencing epochs per lock). */
  locks(): Promise<Locks>;
  /** The app's events: internal (`{platform}.{app}.events.>`) and platform-wide, durable where asked. */
  events(): Promise<Events>;
  /**
   * Serves an RPC method of this app (`{platform}.{app}.rpc.{method}`): callers reach it with
   * `platform.api(app).call(method, payload, { to })`. Can be called before or after `start()`.
   */
  handle<In = unknown, Out = unknown>(method: string, fn: Handler<In, Out>, opts?: HandleOptions<In>): void;
  /**
   * The app's replicated SQLite database on this node (when `sqlite` is configured): the `Primary`
   * while active (`primary.write(fn)`, `primary.sync()`), the `Replica` otherwise.
   */
  sqlite(): { path: string; primary: Primary | undefined; replica: Replica | undefined } | undefined;
  /**
   * Takes a snapshot of the app's database now (active node only): consistent at a txid, stored in
   * `{platform}_{app}_snapshots`, retention applied, WAL stream trimmed below the oldest kept one.
   */
  snapshot(): Promise<SnapshotInfo>;
  /**
   * Lets this node's next promotion publish its copy of the database even though it is not proven to be
   * the history's tip (the operator's way out when the WAL stream and every snapshot are gone: `gc app
   * recover`). `reason` is audited. Throws when the app has no replicated database.
   */
  allowUnprovenPublish(reason: string): void;
  /**
   * A failover drill's fault (active-passive, leader only): this node behaves as if its process died — it
   * stops renewing its lease without releasing it and stops acting at once — so the standbys detect it the
   * way they detect a crash. It sits the election out until another node leads. Its last commits are in the
   * stream first, so nothing is lost; it resolves with their position (undefined without a replicated
   * database, or when this node is not the leader). Use `gc drill failover`.
   */
  simulateCrash(): Promise<{ txid: number; checksum: string } | undefined>;
  /** Current role on this node. */
  role(): AppRole;
  /**
   * Ring mode: the partitions this node serves now (sorted); empty in the other modes and before this node
   * joined the ring.
   */
  partitions(): number[];
  /** Ring mode: true when this node serves `key`'s partition right now (false in the other modes). */
  owns(key: string): boolean;
  /**
   * Ring mode: this node's member of the app's ring (`@gc/ring`: `ownerOf`, `epochOf`, `snapshot`, `watch`,
   * `pin`, …), once the app started; undefined in the other modes.
   */
  ring(): Ring | undefined;
  /** True while active (leader in active-passive). */
  isActive(): boolean;
  /** The fencing epoch of the current leadership (0 when not leader or in pool mode). */
  epoch(): Epoch;
  /** The current leader as this node sees it. */
  leader(): LeaderInfo | null;
  /** Waits until this node is active; rejects with a TimeoutError. */
  waitForActive(timeoutMs: number): Promise<void>;
  /** Adds a hook function (they run in the order added). Returns a function that removes it. */
  on<H extends HookName>(hook: H, fn: AppHooks[H]): () => void;
  /** Gracefully hands leadership to a standby (active-passive). */
  stepDown(): Promise<void>;
  /** Status for `/status`. */
  status(): AppStatus;
  /** Starts the app on this node (the platform starts apps created before `start()`). */
  start(): Promise<void>;
  /** Stops the app on this node: onPassive (if active), step down, onStop. Idempotent. */
  stop(): Promise<void>;
}

/** A gc platform on this node. */
export interface Platform extends Closable {
  readonly name: string;
  readonly nodeId: string;
  readonly nc: NatsConnection;
  readonly health: Health;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Declares an app on this node; throws on a bad or duplicate name. */
  app(name: string, opts?: Partial<AppOptions>): App;
  /** Apps declared on this node. */
  apps(): App[];
  /**
   * Calls another app's (or this app's) RPC methods: `to: 'leader' | 'any' | { key } | { node }`, a
   * default timeout on every call, retries, a circuit breaker and a bulkhead (see `@gc/rpc`).
   */
  api(app: string): AppApi;
  /** This node's labels. */
  labels(): Record<string, string>;
  /**
   * Replaces this node's labels (published to membership, where other nodes, `gc status` and the dashboard
   * see them). Apps with `placement` follow: the scheduler decides again, and an app whose constraints this
   * node no longer meets moves away (an active-passive leader hands over to a ready standby first).
   */
  setLabels(labels: Record<string, string>): Promise<void>;
  /**
   * Changes any live node's labels, as an operator does (`gc node label`): `key → value` sets, `key → null`
   * removes, `reset` drops every earlier change of the node first. The change is kept in the placement
   * bucket and applied by that node over its configured labels (also after a restart). Throws
   * `UnknownNodeError` for a node that is not live.
   */
  updateNodeLabels(nodeId: string, changes: LabelChanges, o?: { reset?: boolean }): Promise<NodeLabelsResult>;
  /**
   * Placement across the platform: the scheduler's decision (`state()`: where each app with `placement`
   * runs, the reasons per node, what cannot be placed, drains in progress), and the operations on nodes:
   * `cordon`, `uncordon`, `drain` (with a deadline). Usable on any node, started or not.
   */
  placement(): PlacementControl;
  /** Stops an app on this node (stepping down if it leads) and forgets it, so it can be declared again. */
  removeApp(name: string): Promise<void>;
  /** Platform-wide locks in `{platform}_platform_locks` (owner = this node). */
  locks(): Promise<Locks>;
  /** Platform-wide events (`{platform}.events.>`). */
  events(): Promise<Events>;
  /** Live members of the platform (heartbeats in `{platform}_membership`; a crashed node is gone within `failAfterMs`). */
  members(): Promise<Member[]>;
  /** The platform's audit trail (`{platform}_audit`): every state change is recorded there. */
  readonly audit: Audit;
  /** Calls `fn` for every hook failure (also audited and counted). */
  onHookFailure(fn: (f: HookFailure) => void): () => void;
  /** The node's view of the platform (backend state as last refreshed). */
  status(): PlatformStatus;
  /** The node's view after refreshing what needs I/O (backend state); what /status and `gc status` show. */
  refreshedStatus(): Promise<PlatformStatus>;
  /** URL of the HTTP endpoints, when enabled. */
  httpUrl(): string | undefined;
  /** Starts the HTTP endpoints and every declared app. */
  start(): Promise<void>;
  /**
   * Stops apps in reverse order (stepping down), then HTTP, health and (if owned) the NATS connection.
   * Idempotent. A platform does not close by itself (not even when its connection closes for good): only
   * `close()` ends it.
   */
  close(): Promise<void>;
}
