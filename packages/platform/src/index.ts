export { createPlatform, defaultAppOptions, auditSeverity } from './platform.js';
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
  ReplicationStatus,
  TransitionContext,
} from './types.js';
export { createAdminClient, controlSubjects, AdminErrorCode } from './admin.js';
export type { AdminClient, RecoverResult, StepDownResult } from './admin.js';
export type { AppApi, CallOptions, CallTarget, HandleOptions, Handler, ServerContext } from '@gc/rpc';
export { RpcErrorCode, RpcError } from '@gc/rpc';
export type { Audit, AuditRecord, AuditQuery } from '@gc/audit';
export type { Events } from '@gc/events';
export type { Lease, Locks, LockInfo, Semaphore } from '@gc/locks';
export type { Member } from '@gc/membership';
