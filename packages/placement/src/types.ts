/**
 * How an app runs on the nodes placed for it (the same values as `@gc/platform`'s `AppMode`).
 * - `active-passive`: the placed nodes are the candidates; one of them (the preferred leader) is active.
 * - `pool`: every placed node runs the app.
 * - `ring`: the placed nodes are the ring's members (partitions spread over them by `@gc/ring`).
 */
export const AppMode = { ActivePassive: 'active-passive', Pool: 'pool', Ring: 'ring' } as const;
/** One of {@link AppMode}. */
export type AppMode = (typeof AppMode)[keyof typeof AppMode];

/** Node labels: `{ disk: 'ssd', zone: 'eu-1' }` (the same shape as membership's labels). */
export type Labels = Readonly<Record<string, string>>;

/** What a node reports about its machine with its membership record; used for load-aware placement. */
export interface NodeInventory {
  /** Logical CPUs. */
  cpus: number;
  /** Total memory, in bytes. */
  memoryBytes: number;
  /** Free space on the data disk, in bytes. */
  diskFreeBytes: number;
  /** One-minute load average (as `os.loadavg()[0]`). */
  load1: number;
}

/** One node as the scheduler sees it. */
export interface PlacementNode {
  /** Node id (a token: letters, digits, `-`, `_`). */
  nodeId: string;
  /** Node labels. Default `{}`. */
  labels?: Labels;
  /**
   * Relative share of work, in (0, 1000]. Default 1. A node of weight 2 is scored as half as loaded as a
   * node of weight 1 running the same apps, so it gets about twice the active instances.
   */
  weight?: number;
  /**
   * Hard limit on how many apps (in any role: leader, standby, pool or ring member) the node runs.
   * Default unlimited.
   */
  capacity?: number;
  /**
   * A cordoned node takes no new apps; apps already placed on it stay until it is drained. Default false.
   */
  cordoned?: boolean;
  /** The node's machine, when known: its CPU load lowers its score. */
  inventory?: NodeInventory;
}

/** A soft preference: nodes matching `selector` get `weight` points (negative: are avoided softly). */
export interface LabelPreference {
  /** A label selector (see {@link parseSelector}). */
  selector: string;
  /** Points in [-100, 100] added to the score of a matching node. */
  weight: number;
}

/** Spread an app's nodes evenly over the values of a label (for example over zones). */
export interface SpreadSpec {
  /** The label whose values are the domains. Nodes without the label are not eligible. */
  label: string;
  /**
   * Largest allowed difference between the number of the app's nodes in the fullest and in the emptiest
   * domain (over the domains that have an eligible node). An integer ≥ 1. Default 1.
   */
  maxSkew?: number;
}

/**
 * Where an app may run (hard constraints) and where it would rather run (soft preferences). Every field
 * is optional; an empty spec places the app on every node that has room.
 */
export interface PlacementSpec {
  /** Hard: a node must match every one of these selectors (`disk=ssd`, `zone in (a,b)`). */
  onLabel?: string | readonly string[];
  /** Hard: a node must match none of these selectors. */
  avoidLabel?: string | readonly string[];
  /** Soft: points added to nodes matching each selector. */
  preferLabel?: readonly LabelPreference[];
  /** Hard: only these nodes (ids that are not in the inventory simply never match). */
  onNodes?: readonly string[];
  /** Hard: co-locate — run only on nodes that run every one of these apps (scheduled first). */
  withApp?: readonly string[];
  /**
   * Hard: anti-affinity — never share a node with any of these apps, in any role. It holds both ways: an
   * app listed here also avoids this one.
   */
  awayFromApp?: readonly string[];
  /** Hard: spread the app's nodes over a label's values with a maximum skew. */
  spread?: SpreadSpec;
  /** Fewest nodes to place the app on; fewer eligible nodes make it unsatisfiable. Default 1. */
  minNodes?: number;
  /**
   * Most nodes to place the app on. Default unlimited: every eligible node (for active-passive: every
   * eligible node is a candidate, one of them the preferred leader).
   */
  maxNodes?: number;
}

/**
 * How many of an app's instances may be disrupted at once by voluntary moves (drain, rebalance): the
 * Kubernetes PodDisruptionBudget, per app. A number of instances, or a percentage of the app's current
 * instances (`"50%"`, rounded up). Set at most one of the two.
 */
export interface DisruptionBudget {
  /** Instances that must stay available during a move. */
  minAvailable?: number | `${number}%`;
  /** Instances that may be unavailable during a move. */
  maxUnavailable?: number | `${number}%`;
}

/**
 * A maintenance window: opens each time `cron` matches (five fields `min hour day month weekday`, or six
 * with seconds first; croner syntax) and stays open `durationMs`.
 */
export interface MaintenanceWindow {
  cron: string;
  durationMs: number;
  /** IANA time zone of the cron expression. Default UTC (the same on whichever node schedules). */
  timezone?: string;
}

/**
 * When the scheduler may migrate an app on its own (a label change, a rebalance, a better node): not within
 * `cooldownMs` of its last migration, and only inside one of its maintenance windows when it has any.
 * Operators' explicit moves and drains are not held back by it (a drain has its own deadline); an app
 * whose node died is placed again at once.
 */
export interface MigrationPolicy {
  /** Least time between two automatic migrations of the app. Default the scheduler's (30 s). */
  cooldownMs?: number;
  /** Automatic migrations wait for one of these windows. Default none (any time). */
  windows?: readonly MaintenanceWindow[];
}

/** One app as the scheduler sees it. */
export interface PlacementApp {
  /** App name (as `@gc/core`'s `validateAppName`). */
  app: string;
  /** How the app runs. */
  mode: AppMode;
  /** Constraints and preferences. Default `{}`. */
  placement?: PlacementSpec;
  /** Disruption budget for drains and moves. Default none (any number may be moved at once). */
  budget?: DisruptionBudget;
}

/** Where one app runs (or is to run). */
export interface AppPlacement {
  /** The nodes, sorted by id. Empty when the app could not be placed. */
  nodes: readonly string[];
  /** Active-passive only: the preferred leader, one of `nodes`. */
  leader?: string;
}

/** Where every app runs: app name → its placement. */
export type PlacementMap = Readonly<Record<string, AppPlacement>>;

/** Input of {@link schedule}. Order of the arrays does not matter: the result is the same. */
export interface ScheduleInput {
  nodes: readonly PlacementNode[];
  apps: readonly PlacementApp[];
  /** The placement in force now; the scheduler keeps apps where they are unless there is a reason. */
  current?: PlacementMap;
  /** Scoring and hysteresis settings, merged over {@link defaultScheduleOptions}. */
  options?: Partial<ScheduleOptions>;
}

/** Scoring settings. Scores are in points; preferences weigh −100 … 100 each. */
export interface ScheduleOptions {
  /**
   * Points a node gets for already running the app (and the current leader for leading it). An app moves
   * only when another node scores more than this much higher. Default 25.
   */
  hysteresis: number;
  /** Points taken per active instance already on a node (divided by the node's weight). Default 10. */
  loadWeight: number;
  /** How much a standby (active-passive, not the leader) counts as load, in active instances. Default 0.2. */
  standbyLoad: number;
  /** Points taken per unit of `load1 / cpus` (capped at 2) when a node reports its inventory. Default 10. */
  inventoryWeight: number;
  /**
   * With `spread`: points taken per node the app already has in a domain when picking the next node, so
   * the spread is as even as scores allow (within `maxSkew`, which is hard). Default 10.
   */
  spreadWeight: number;
  /** Record per-node reasons and score breakdowns in the result. Default true. */
  explain: boolean;
}

/** The hard constraints, in the order a node is checked against them. */
export const Constraint = {
  OnNodes: 'onNodes',
  OnLabel: 'onLabel',
  AvoidLabel: 'avoidLabel',
  Cordoned: 'cordoned',
  Draining: 'draining',
  Spread: 'spread',
  WithApp: 'withApp',
  AwayFromApp: 'awayFromApp',
  Capacity: 'capacity',
  MinNodes: 'minNodes',
} as const;
/** One of {@link Constraint}. */
export type Constraint = (typeof Constraint)[keyof typeof Constraint];

/** How a node's score is made up (points; `total` is their sum). */
export interface ScoreBreakdown {
  /** Sum of the weights of the matching `preferLabel` selectors. */
  affinity: number;
  /** Minus `loadWeight` × (active instances already on the node ÷ weight). */
  load: number;
  /** Minus `inventoryWeight` × min(load1 ÷ cpus, 2); 0 without inventory. */
  inventory: number;
  /** `hysteresis` when the node already runs the app, else 0. */
  sticky: number;
  total: number;
}

/** Why one node was or was not chosen for one app. */
export type NodeReason =
  | {
      status: 'excluded';
      /** The first hard constraint the node fails. */
      constraint: Constraint;
      /** What exactly, for people: `labels do not match "disk=ssd"`. */
      detail: string;
    }
  | {
      status: 'selected';
      /** `leader`/`standby` for active-passive, `member` for pool and ring. */
      role: 'leader' | 'standby' | 'member';
      score: ScoreBreakdown;
    }
  | {
      status: 'not-selected';
      score: ScoreBreakdown;
      /** Why an eligible node was passed over: `maxNodes 2 reached by higher scores`, a spread limit. */
      detail: string;
    };

/** Why an app could not be placed. */
export interface Unsatisfiable {
  app: string;
  /** The constraint that decided it (the one excluding the most nodes, or `minNodes`/`spread`/`withApp`). */
  constraint: Constraint;
  /** `no node set satisfies app "orders": 3 of 3 nodes fail onLabel "disk=ssd" (n1, n2, n3)`. */
  message: string;
}

/** Output of {@link schedule}: JSON-serialisable, deterministic. */
export interface ScheduleResult {
  /** Every app that could be placed. */
  placements: Record<string, AppPlacement>;
  /** App → node → why (empty objects when `explain` is false). */
  reasons: Record<string, Record<string, NodeReason>>;
  /** Every app that could not be placed, with why. */
  unsatisfiable: Record<string, Unsatisfiable>;
  /**
   * The order apps were scheduled in: co-located apps after the apps they follow, otherwise by name.
   * `awayFromApp` and `capacity` are checked against the apps scheduled before.
   */
  order: readonly string[];
}

/** One app's change between two placements. */
export interface PlacementChange {
  app: string;
  /**
   * `place`: was nowhere, now somewhere. `remove`: was somewhere, now nowhere (unsatisfiable or gone).
   * `move`: nodes added and removed. `grow`/`shrink`: only added / only removed. `leader`: same nodes,
   * another preferred leader.
   */
  kind: 'place' | 'remove' | 'move' | 'grow' | 'shrink' | 'leader';
  /** Nodes the app leaves. */
  from: readonly string[];
  /** Nodes the app is started on. */
  to: readonly string[];
  /** Active-passive: the preferred leader before and after, when it changes. */
  leader?: { from?: string; to?: string };
  /** Why, one line per node or decision. */
  reasons: readonly string[];
}

/** Output of {@link plan}. */
export interface PlacementPlan {
  /** Changes, sorted by app. */
  changes: PlacementChange[];
  /** Apps whose placement stays the same. */
  unchanged: string[];
}

/** Input of {@link planDrain}. */
export interface DrainInput extends ScheduleInput {
  /**
   * App → nodes on which its instance is not available right now (starting, unhealthy). Instances on
   * nodes missing from `nodes` are unavailable too.
   */
  unavailable?: Readonly<Record<string, readonly string[]>>;
  /** Most apps moved at once (one wave). Default 1, like Nomad's `migrate.max_parallel`. */
  maxParallel?: number;
}

/** One app to move off a drained node. */
export interface DrainStep {
  app: string;
  /** The drained node. */
  from: string;
  /** Where its replacement starts (none when the app just shrinks). */
  to?: string;
  /**
   * `switchover`: active-passive leader hand-over to `to` (or a standby). `replace`: start on `to`, wait
   * until ready, then stop on `from` (no loss of availability). `stop`: stop on `from`, no replacement.
   */
  action: 'switchover' | 'replace' | 'stop';
  /** Instances unavailable while the step runs (0 for `replace`, 1 otherwise). */
  disruption: 0 | 1;
  /** Available instances before the step and at its worst moment. */
  available: { before: number; during: number };
}

/** Why an app cannot leave the drained node now. */
export interface DrainBlock {
  app: string;
  /** `budget`: the disruption budget forbids the step. `unsatisfiable`: no other node may run it. */
  reason: 'budget' | 'unsatisfiable';
  /** For people: what blocks and what would unblock it. */
  message: string;
  /** The step that is blocked, when there is one. */
  step?: DrainStep;
}

/** Output of {@link planDrain}. */
export interface DrainPlan {
  node: string;
  /** Steps that may run now, in order. */
  steps: DrainStep[];
  /** App names of `steps` grouped in waves of at most `maxParallel`. */
  waves: string[][];
  /** Apps that cannot leave now, with why. */
  blocked: DrainBlock[];
  /** True when every app on the node has a step (nothing is blocked). */
  complete: boolean;
  /** The placement after the drain (the node excluded); blocked apps keep their current placement. */
  next: ScheduleResult;
}
