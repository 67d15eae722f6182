// The records of the placement bucket `{platform}_placement` (a public contract, see the README):
// - `decl.<node>`: what a node declares (its apps with placement, their specs, its machine), written by it;
// - `admin.<node>`: an operator's cordon or drain of a node, written by whoever runs the command;
// - `state`: the scheduler's decision (where each app runs, why, what cannot be placed), written fenced by
//   the scheduler's election epoch, so a deposed scheduler's late write is refused.
import { z } from 'zod';
import { parseJsonRecord } from '@gc/core';
import type { AppPlacement, DisruptionBudget, MigrationPolicy, PlacementSpec } from '@gc/placement';
import type { MigrationLimits } from './gate.js';

/** Keys of the placement bucket. */
export const PlacementKey = {
  decl: (nodeId: string) => `decl.${nodeId}`,
  admin: (nodeId: string) => `admin.${nodeId}`,
  move: (app: string) => `move.${app}`,
  labels: (nodeId: string) => `labels.${nodeId}`,
  rebalance: (app: string) => `rebalance.${app}`,
  state: 'state',
} as const;

const count = z.number().int().nonnegative();
const budgetValue = z.union([count, z.string().regex(/^\d+(\.\d+)?%$/)]);

/** An app as a node declares it to the scheduler. The spec itself is validated by `@gc/placement`. */
export const declaredAppSchema = z.looseObject({
  mode: z.enum(['active-passive', 'pool', 'ring']),
  placement: z.looseObject({}),
  budget: z
    .looseObject({ minAvailable: budgetValue.optional(), maxUnavailable: budgetValue.optional() })
    .optional(),
  migrate: z.looseObject({}).optional(),
});
/** One app of a {@link NodeDeclaration}. */
export interface DeclaredApp {
  mode: 'active-passive' | 'pool' | 'ring';
  placement: PlacementSpec;
  budget?: DisruptionBudget;
  /** When automatic migrations may happen (cooldown, maintenance windows); validated by `@gc/placement`. */
  migrate?: MigrationPolicy;
}

/** `decl.<node>`: the apps with placement a node runs, and its machine. */
export const nodeDeclarationSchema = z.looseObject({
  nodeId: z.string().min(1),
  apps: z.record(z.string(), declaredAppSchema),
  inventory: z
    .looseObject({ cpus: count, memoryBytes: count, diskFreeBytes: count, load1: z.number().nonnegative() })
    .optional(),
  active: z.array(z.string()).optional(),
  ready: z.array(z.string()).optional(),
  refused: z.record(z.string(), z.string()).optional(),
  at: z.number(),
});
/** A node's declaration. */
export interface NodeDeclaration {
  nodeId: string;
  apps: Record<string, DeclaredApp>;
  inventory?: { cpus: number; memoryBytes: number; diskFreeBytes: number; load1: number };
  /** Apps active on the node now (the leader of an active-passive app, an active pool instance). */
  active?: string[];
  /** Active-passive apps whose standby here could take over now (a candidate, its replica caught up). */
  ready?: string[];
  /**
   * Apps whose `onMigrationStart` hook refused to leave this node (or hand its lead over), with the hook's
   * reason. The scheduler reports them; a drain's deadline overrides them.
   */
  refused?: Record<string, string>;
  /** Wall-clock ms of the write. */
  at: number;
}

/** `admin.<node>`: an operator's hold on a node. */
export const nodeAdminSchema = z.looseObject({
  cordoned: z.boolean(),
  drain: z
    .looseObject({ since: z.number(), deadlineMs: z.number().int().positive(), reason: z.string() })
    .optional(),
  reason: z.string(),
  by: z.string(),
  at: z.number(),
});
/** A cordon (the node takes no new apps) or a drain (every app leaves it, within a deadline). */
export interface NodeAdmin {
  cordoned: boolean;
  /** Present while the node is drained: since when (wall-clock ms) and how long it may take. */
  drain?: { since: number; deadlineMs: number; reason: string };
  /** Why, as the operator said it. */
  reason: string;
  /** Who wrote it (the node or CLI that ran the command). */
  by: string;
  at: number;
}

/** `move.<app>`: an operator's move of an active-passive app's lead to a node. */
export const appMoveSchema = z.looseObject({
  to: z.string().min(1),
  reason: z.string(),
  by: z.string(),
  at: z.number(),
});
/** A move in progress: the scheduler makes `to` the app's preferred leader while `to` may run it. */
export interface AppMove {
  to: string;
  reason: string;
  by: string;
  at: number;
}

/**
 * `labels.<node>`: an operator's change to a node's labels (`updateNodeLabels`, `gc node label`). The node
 * applies it over the labels of its own configuration (and again after a restart), so membership shows
 * the labels in force.
 */
export const nodeLabelsSchema = z.looseObject({
  set: z.record(z.string(), z.string()),
  remove: z.array(z.string()),
  by: z.string(),
  at: z.number(),
});
/** Labels an operator set on (or removed from) a node. */
export interface NodeLabels {
  set: Record<string, string>;
  remove: string[];
  by: string;
  at: number;
}

/** `rebalance.<app>`: an operator asked to place an app afresh, ignoring where it runs now. */
export const appRebalanceSchema = z.looseObject({ reason: z.string(), by: z.string(), at: z.number() });
/** A rebalance the scheduler has not applied yet (it deletes the key once its decision applied it). */
export interface AppRebalance {
  reason: string;
  by: string;
  at: number;
}

const reasonSchema = z.looseObject({ status: z.enum(['excluded', 'selected', 'not-selected']) });

/** `state`: the scheduler's decision. */
export const placementStateSchema = z.looseObject({
  scheduler: z.string(),
  epoch: count,
  at: z.number(),
  generation: count,
  placements: z.record(
    z.string(),
    z.looseObject({ nodes: z.array(z.string()), leader: z.string().optional() }),
  ),
  reasons: z.record(z.string(), z.record(z.string(), reasonSchema)),
  unsatisfiable: z.record(z.string(), z.looseObject({ constraint: z.string(), message: z.string() })),
  nodes: z.array(z.string()),
  leaders: z.record(z.string(), z.string()).optional(),
  draining: z.record(
    z.string(),
    z.looseObject({
      remaining: z.array(z.string()),
      blocked: z.array(z.string()),
      forced: z.boolean(),
      since: z.number().optional(),
      requested: z.number().optional(),
    }),
  ),
  deferred: z.record(z.string(), z.string()).optional(),
  migrated: z.record(z.string(), z.number()).optional(),
  refused: z.record(z.string(), z.string()).optional(),
  limits: z.looseObject({ cooldownMs: count, maxConcurrentMigrations: count }).optional(),
});
/** Where every app with placement runs, as the scheduler decided it. */
export interface PlacementState {
  /** Node that decided. */
  scheduler: string;
  /** Its election epoch (the write is fenced by it). */
  epoch: number;
  /** Wall-clock ms of the decision. */
  at: number;
  /** Increases with every decision written. */
  generation: number;
  placements: Record<string, AppPlacement>;
  /** App → node → why (see `@gc/placement`'s `NodeReason`). */
  reasons: Record<string, Record<string, Record<string, unknown> & { status: string }>>;
  /** Apps that no node set satisfies, with why. */
  unsatisfiable: Record<string, { constraint: string; message: string }>;
  /** The live nodes the decision saw. */
  nodes: string[];
  /**
   * Active-passive apps: the node that led each when the decision was made. A leader hands over to another
   * preferred leader only when the decision knew it led (else the decision is older than its leadership).
   */
  leaders?: Record<string, string>;
  /**
   * Nodes being drained: the apps still placed on them, why some cannot leave yet (a budget, no other node),
   * and whether the deadline passed and the moves are forced. `since`: when a scheduler first saw the drain
   * (wall-clock ms of the schedulers; the deadline runs from it); `requested`: the drain record's own time.
   */
  draining: Record<
    string,
    { remaining: string[]; blocked: string[]; forced: boolean; since?: number; requested?: number }
  >;
  /**
   * Apps whose automatic migration waits, with why (cooldown, outside a maintenance window, too many
   * migrations in flight): they keep their previous placement meanwhile.
   */
  deferred?: Record<string, string>;
  /** App → wall-clock ms of its last migration (a node left its placement, or its leader changed). */
  migrated?: Record<string, number>;
  /** App → why it has not left a node (`onMigrationStart` refused there: "node: reason"). */
  refused?: Record<string, string>;
  /** The limits of automatic migrations the scheduler decided with (plans use the same). */
  limits?: MigrationLimits;
}

/**
 * Parses a JSON record with `schema` (`@gc/core`'s `parseJsonRecord`), typed as the record's interface (the
 * loose schemas keep unknown fields, so their output type is wider); undefined when it is not one (the
 * caller says what it skipped).
 */
export function parseRecord<T>(schema: z.ZodType, bytes: Uint8Array): T | undefined {
  return (parseJsonRecord(schema, bytes) as T | null) ?? undefined;
}
