export * from './platform.js';
export { auditSeverity } from './audit.js';
export { AppMode, AppRole } from './types.js';
export type {
  App,
  AppElectionOptions,
  AppHooks,
  AppOptions,
  AppStatus,
  HookFailure,
  HookName,
  LeaderChange,
  MemberChange,
  Platform,
  PlatformOptions,
  PlatformStatus,
  TransitionContext,
  MigrationAnswer,
  MigrationCompleteContext,
  MigrationContext,
  PlacementInvalidContext,
} from './types.js';
export { createAdminClient, AdminErrorCode, ControlMethod, CONTROL_METHOD_PREFIX } from './admin.js';
export type { ReplicationStatus } from '@gc/wal';
export type { AppComponent, ComponentContext, ComponentTransition } from '@gc/core';
export { ComponentOrder } from './components.js';
export type { AdminClient, DrillAck, RecoverResult, StepDownResult } from './admin.js';
export * from './drill.js';
export type { AppApi, CallOptions, CallTarget, HandleOptions, Handler, ServerContext } from '@gc/rpc';
export { RpcErrorCode, RpcError } from '@gc/rpc';
export type { Audit, AuditRecord, AuditQuery } from '@gc/audit';
export type { Events } from '@gc/events';
export type { Lease, Locks, LockInfo, Semaphore } from '@gc/locks';
export type { Member } from '@gc/membership';
export * from './placement/bucket.js';
export { placementControl } from './placement/runtime.js';
export type { AppWhere, NodeLabelsResult, PlacementControl } from './placement/runtime.js';
export type { OperationPlan, PlacementOperation, PlannedDisruption } from './placement/plan-op.js';
export { effectiveLabels } from './placement/labels.js';
export type { LabelChanges } from './placement/labels.js';
export { DEFAULT_MIGRATION_LIMITS } from './placement/gate.js';
export type { MigrationLimits } from './placement/gate.js';
export * from './placement/errors.js';
export type {
  NodeAdmin,
  NodeDeclaration,
  NodeLabels,
  AppRebalance,
  PlacementState,
} from './placement/records.js';
export type { PlacementSpec, DisruptionBudget, MigrationPolicy, MaintenanceWindow } from '@gc/placement';
