export { parseSelector } from './selector.js';
export type { LabelRequirement, LabelSelector } from './selector.js';
export { schedule } from './schedule.js';
export { plan, planDrain, budgetCount } from './plan.js';
export { defaultScheduleOptions, resolveScheduleOptions, MAX_WEIGHT, MAX_PREFERENCE } from './options.js';
export { placementSpecSchema, migrationPolicySchema } from './schema.js';
export { windowStatus, validateWindow } from './windows.js';
export type { WindowStatus } from './windows.js';
export { PlacementErrorCode, SelectorSyntaxError, UnknownNodeError } from './errors.js';
export type { PlacementErrorCodeValue } from './errors.js';
export { AppMode, Constraint } from './types.js';
export type {
  AppPlacement,
  DisruptionBudget,
  DrainBlock,
  DrainInput,
  DrainPlan,
  DrainStep,
  LabelPreference,
  MaintenanceWindow,
  MigrationPolicy,
  Labels,
  NodeInventory,
  NodeReason,
  PlacementApp,
  PlacementChange,
  PlacementMap,
  PlacementNode,
  PlacementPlan,
  PlacementSpec,
  ScheduleInput,
  ScheduleOptions,
  ScheduleResult,
  ScoreBreakdown,
  SpreadSpec,
  Unsatisfiable,
} from './types.js';
