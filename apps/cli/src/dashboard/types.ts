// The dashboard's shapes: a cluster snapshot (timeline, rings, placement), createDashboard's options, routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '@gc/core';
import type { AdminClient, Audit, PlacementBucket } from '@gc/platform';
import type { StatusJson } from '../status-summary.js';

/** One line of the dashboard's timeline. */
export interface DashboardEvent {
  /** Identifies the event so the page can merge what it derived itself with what the server sends. */
  key: string;
  time: number;
  node: string;
  type: string;
  app?: string;
  text: string;
}

/** The partition map of a ring-mode app, as the dashboard shows it. */
export interface RingView {
  partitions: number;
  /** Serving owner per partition (null while it moves or has no owner). */
  owners: Array<string | null>;
  /** The coordinator's target per partition. */
  targets: Array<string | null>;
  /** Partitions served per node. */
  counts: Record<string, number>;
  /** Partitions whose target is not yet their serving owner. */
  moving: number[];
  pins: Record<number, string>;
  coordinator: string | null;
  mapVersion: number;
}

/** One app of the placement section: where the scheduler placed it, and why (or why not). */
export interface PlacementAppView {
  /** Nodes the last decision placed it on (empty when it cannot be placed). */
  placed: string[];
  /** Active-passive: the preferred leader. */
  leader?: string;
  /** No node set satisfies the app: the deciding constraint and the scheduler's message. */
  unsatisfiable?: { constraint: string; message: string };
  /** Its automatic migration waits (cooldown, maintenance window, too many in flight): why. */
  deferred?: string;
  /** `onMigrationStart` refused to leave a node: "node: reason". */
  refused?: string;
  /** Node → why it was selected, passed over or excluded, one line each (see {@link describeReason}). */
  reasons: Record<string, string>;
}

/** A node an operator holds: cordoned (takes no new apps) or drained (every app leaves it). */
export interface PlacementNodeView {
  cordoned: boolean;
  /** The operator's reason. */
  cordonReason?: string;
  /** Who cordoned or drained it. */
  by?: string;
  /** Present while the node is drained. */
  drain?: {
    /** Wall-clock ms the drain started. */
    since: number;
    /** How long it may take before the moves a budget holds back are forced. */
    deadlineMs: number;
    reason: string;
    /** Apps still placed on the node. */
    remaining: string[];
    /** Why some of them cannot leave yet (a budget, no other node). */
    blocked: string[];
    /** The deadline passed: the moves are forced. */
    forced: boolean;
    /** Whether the scheduler's last decision saw the drain yet (remaining/blocked/forced are its view). */
    seen: boolean;
  };
}

/** The placement section of a snapshot: the scheduler's last decision and the operators' holds. */
export interface PlacementView {
  /** Node that made the decision (null before the first decision). */
  scheduler: string | null;
  epoch: number;
  /** Increases with every decision (0: none yet). */
  generation: number;
  /** Wall-clock ms of the decision (null before the first one). */
  at: number | null;
  apps: Record<string, PlacementAppView>;
  /** Cordoned and drained nodes, by node id (nodes nobody holds are left out). */
  nodes: Record<string, PlacementNodeView>;
}

/** What `/api/cluster` returns and `/api/stream` pushes. */
export interface ClusterSnapshot extends StatusJson {
  generatedAt: number;
  nodes: Array<StatusJson['nodes'][number] & { apps: Array<{ name: string; role: string }> }>;
  events: DashboardEvent[];
  /** Ring-mode apps' partition maps, by app (when the dashboard was given `ring`). */
  rings: Record<string, RingView>;
  /**
   * Placement: the scheduler's decision, cordons and drains (when the dashboard was given `placement` and
   * the platform has a placement bucket; absent when no app uses placement).
   */
  placement?: PlacementView;
  /** Why the placement bucket could not be read for this snapshot (the section is then absent). */
  placementError?: string;
}

/** What the dashboard reads of the placement bucket (a {@link PlacementBucket} is one). */
export type PlacementSource = Pick<PlacementBucket, 'state' | 'admins'>;

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  platform: string;
  /** The node serving the dashboard (named in events it derives). */
  nodeId: string;
  admin: AdminClient;
  /** The platform's audit trail: its recent records are the timeline (leader changes derived from snapshots are added). */
  audit?: Audit;
  /** How far back the timeline reads the audit trail, in ms. Default 30 minutes. */
  auditWindowMs?: number;
  /** How long to collect node answers per snapshot, in ms. Default 300. */
  collectMs?: number;
  /** Snapshot period while a browser is connected, in ms. Default 1000. */
  periodMs?: number;
  /** Events kept for the timeline. Default 100. */
  maxEvents?: number;
  /**
   * Opens a read-only view of a ring-mode app's partition map (`openRingObserver` of `@gc/ring`); undefined
   * when the app has no ring yet. Without it the dashboard shows no partition maps.
   */
  ring?: (app: string) => Promise<RingSource | undefined>;
  /**
   * Opens the platform's placement bucket (`openPlacementBucket(nc, platform, { create: false })` of
   * `@gc/platform`); undefined, a `PlacementNotFoundError` or a "stream not found" read means the platform
   * has none (no app uses placement): the snapshot then has no placement section. Read once per snapshot.
   * Without it the dashboard shows no placement.
   */
  placement?: () => Promise<PlacementSource | undefined>;
  clock?: Clock;
}

/** What the dashboard reads of a ring (a `RingObserver` of `@gc/ring` is one). */
export interface RingSource {
  snapshot(): RingView;
  close(): Promise<void>;
}

/** The dashboard's routes for the node's HTTP server, and a close() that ends live streams. */
export interface Dashboard {
  routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>>;
  /** Adds an event to the timeline (audit events, failovers seen by this node). */
  push(event: DashboardEvent): void;
  close(): void;
}
