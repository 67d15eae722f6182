// What an app is declared with (`platform.app(name, options)`): its mode, election and ring timings, backend,
// VIP, replicated SQLite database, phase time limits and extra components.
import type { AppComponent } from '@gc/core';
import type { ElectionOptions } from '@gc/election';
import type { Backend, BackendConfig } from '@gc/backends';
import type { ArpOptions, VipOptions } from '@gc/vip';
import type { RingOptions } from '@gc/ring';
import type { DisruptionBudget, MigrationPolicy, PlacementSpec } from '@gc/placement';
import type { AppHooks } from './hook-types.js';

/** How an app runs across the nodes. */
export const AppMode = {
  /** One leader (elected with fencing epochs) is active; the others are standbys. */
  ActivePassive: 'active-passive',
  /** Every node that runs the app is active. */
  Pool: 'pool',
  /**
   * Every node that runs the app is active and owns a share of the app's partitions (`@gc/ring`): each key
   * has exactly one owner, `onOwn` / `onRelease` run per partition, and calls sent with `{ to: { key } }`
   * reach the key's owner (held while its partition moves).
   */
  Ring: 'ring',
} as const;
/** One of {@link AppMode}. */
export type AppMode = (typeof AppMode)[keyof typeof AppMode];

/** Election timing for an active-passive app (see `@gc/election`). */
export type AppElectionOptions = Partial<
  Pick<
    ElectionOptions,
    | 'ttlMs'
    | 'renewIntervalMs'
    | 'renewDeadlineMs'
    | 'pollIntervalMs'
    | 'cooldownMs'
    | 'priority'
    | 'observeOnly'
    | 'fastFailover'
    | 'fastFailoverIntervalMs'
    | 'fastFailoverProbes'
    | 'replicas'
  >
>;

/** The ring options an app may set (see `@gc/ring`'s `RingOptions`). */
export type AppRingOptions = Partial<
  Pick<
    RingOptions,
    | 'partitions'
    | 'weight'
    | 'ttlMs'
    | 'renewIntervalMs'
    | 'renewDeadlineMs'
    | 'ownTimeoutMs'
    | 'releaseTimeoutMs'
    | 'leaveTimeoutMs'
    | 'maxConcurrentMoves'
    | 'settleMs'
    | 'stuckMoveMs'
    | 'holdTimeoutMs'
    | 'maxHeldCalls'
    | 'replicas'
  >
>;

/** Options of {@link Platform.app}. */
export interface AppOptions {
  /** How the app runs. Default `active-passive`. */
  mode: AppMode;
  /** Election timing (active-passive only). */
  election: AppElectionOptions;
  /**
   * The app's recovery-time budget, in ms: how long a failover (crash of the leader → the new leader active,
   * database promoted, VIP held, backend healthy, onActive done) may take (active-passive only). Checked when
   * the app is declared against the worst case its election timings allow for detection alone (refused with
   * the arithmetic when shorter), and by `gc drill`, which measures every phase against it. Default none.
   */
  recoveryBudgetMs?: number;
  /**
   * Ring mode: the ring's settings (`@gc/ring`): `partitions` (default 256, fixed once the ring exists),
   * `weight` (this node's relative capacity, default 1), `ttlMs` (a crashed member's partitions move after
   * about this long, default 3000), `maxConcurrentMoves`, `settleMs`, `holdTimeoutMs`, … Default `{}`.
   */
  ring?: AppRingOptions;
  /** Timeout of each hook call, in ms. Default: the platform's `hookTimeoutMs`. */
  hookTimeoutMs?: number;
  /** Replicas of the app's KV bucket. Default 1 (3 on a 3-node cluster is usual). */
  kvReplicas: number;
  /** Hooks given up front (more can be added with `app.onActive(...)` and friends). */
  hooks: Partial<AppHooks>;
  /**
   * The real service the active node runs (active-passive only): a backend config (`{ type: 'process' |
   * 'systemd' | 'docker' | '<package>', options }`, loaded with `@gc/backends`) or a `Backend` instance.
   * Started and waited healthy after the VIP and before onActive; stopped after onPassive.
   */
  backend?: BackendConfig | Backend;
  /**
   * Where the backend runs. `when-active` (the default): only on the active node — started after the VIP,
   * stopped after onPassive. `always`: on every node of the app, started when the app starts; a failover
   * then only moves the VIP and waits for the new leader's backend to answer its health check (the
   * keepalived model: the service runs everywhere, the address moves). Use it for services that are safe to
   * run on standbys (a proxy, a stateless server); not for one that writes the replicated database.
   */
  backendRuns?: 'when-active' | 'always';
  /**
   * A virtual IP the active node holds (active-passive only; see `@gc/vip`): acquired with the
   * leadership epoch before the backend starts, released after it stops and on shutdown.
   */
  vip?: Partial<Omit<VipOptions, 'arp'>> &
    Pick<VipOptions, 'address' | 'interface'> & { arp?: Partial<ArpOptions> };
  /**
   * A SQLite database (WAL mode) replicated page by page to every node of this app (active-passive
   * only; see `@gc/wal`): standbys keep a verified replica, the new leader catches up and promotes it
   * before the VIP, the backend and onActive; a deposed leader demotes after onPassive, and writes it
   * made that never reached the stream are moved aside and reported, never merged.
   */
  sqlite?: {
    /** The database file the app (or its backend) uses. */
    path: string;
    /** Make every commit wait until it is in the stream (RPO 0); `sqlite().primary.sync()` does it per call. Default false. */
    synchronous?: boolean;
    /** Take a snapshot this often while primary, in ms (0: never). Default 600000. */
    snapshotIntervalMs?: number;
    /**
     * Capture and publish commits from a worker thread with its own NATS connection (`@gc/wal`'s `worker`
     * option), so replication leaves the app's thread to its commits: for write-heavy apps. Needs the
     * platform to connect itself (`nats` given as connection options, as `gc run` does). Adds the worker's
     * start (tens of ms) to each promotion. Default false.
     */
    worker?: boolean;
    /**
     * Replicas of the app's WAL stream and snapshot store when they are created: 3 on a 3-node JetStream
     * cluster, so that a server's loss loses nothing the stream acknowledged. Default 1.
     */
    replicas?: number;
  };
  /** Time limits of the active sequence's phases, in ms (see `@gc/backends` createActiveCoordinator). */
  phaseTimeouts?: Partial<{ promoteMs: number; vipMs: number; backendMs: number }>;
  /**
   * More parts of the app (see `AppComponent` in `@gc/core`): each starts with the app on this node and
   * runs its step in the active sequence by its `order` (after the backend and before the onActive hooks by
   * default), timed, audited and undone in reverse when a later step fails; its `status()` shows under
   * `components` in the app's status and its `health()` in the node's health. Default none.
   */
  components?: AppComponent[];
  /**
   * Where the app may run (`@gc/placement`: `onLabel`, `avoidLabel`, `preferLabel`, `onNodes`, `withApp`,
   * `awayFromApp`, `spread`, `minNodes`, `maxNodes`). Given (even as `{}`), the app is placed by the
   * platform's scheduler among the live, uncordoned nodes that declare it: active-passive, only the placed
   * nodes contend for the leadership and the preferred leader is handed the lead; pool, only the placed
   * nodes are active. Absent, the app runs on every node that declares it (as before placement existed).
   * Not for ring mode (its members are the nodes that declare it). Default none.
   */
  placement?: PlacementSpec;
  /**
   * Disruption budget of the app for voluntary moves (drains): `minAvailable` or `maxUnavailable`, a
   * number or a percentage. Only with `placement`. Default none.
   */
  budget?: DisruptionBudget;
  /**
   * When the scheduler may migrate the app on its own (a label or spec change, a better node, a rebalance):
   * `cooldownMs` after its last migration (default the platform's `migrations.cooldownMs`) and only inside
   * its maintenance `windows` (cron expressions) when it has any. Moves and drains are not held back. Only
   * with `placement`. Default none.
   */
  migrate?: MigrationPolicy;
}
