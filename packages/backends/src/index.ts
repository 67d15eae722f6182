export { defineBackend, isBackendPlugin, mergeOptions, assertBackendShape } from './define.js';
export type { BackendDefinition, BackendPlugin } from './define.js';
export { BackendState } from './types.js';
export type {
  Backend,
  BackendContext,
  BackendEvent,
  BackendStateValue,
  BackendStatus,
  HealthCheck,
  HealthResult,
  LogsOptions,
} from './types.js';
export {
  BackendErrorCode,
  BackendError,
  ToolMissingError,
  PortInUseError,
  CommandFailedError,
  BackendLoadError,
  PhaseError,
} from './errors.js';
export type { BackendErrorCodeValue } from './errors.js';
export { RestartMode, defaultRestartPolicy, restartDecision } from './restart.js';
export type { RestartPolicy, RestartModeValue, RestartDecision } from './restart.js';
export { probe, healthEndpoint } from './health.js';
export { assertPortFree } from './ports.js';
export { processGroupMembers, parseProcStat, parseProcNetTcp, findListenerPid } from './procfs.js';
export type { ProcStat, ListeningSocket } from './procfs.js';
export { processBackend, defaultProcessBackendOptions } from './process.js';
export type { ProcessBackendOptions } from './process.js';
export { systemdBackend, defaultSystemdBackendOptions, systemdUnavailableReason } from './systemd.js';
export type { SystemdBackendOptions } from './systemd.js';
export {
  SHOW_PROPERTIES,
  normalizeUnit,
  systemctlVerbArgs,
  systemctlIsActiveArgs,
  systemctlShowArgs,
  systemctlKillArgs,
  systemctlResetFailedArgs,
  journalctlArgs,
  parseShow,
  classifySystemctlError,
} from './systemd-args.js';
export type { SystemdScope, UnitInfo, SystemctlFailure } from './systemd-args.js';
export { dockerBackend, defaultDockerBackendOptions } from './docker.js';
export type { DockerBackendOptions } from './docker.js';
export {
  dockerRunArgs,
  dockerStopArgs,
  dockerRmArgs,
  dockerInspectArgs,
  dockerLogsArgs,
  dockerServerVersionArgs,
  parseInspect,
  classifyDockerError,
  parseBindFailure,
  validateRestartPolicy,
} from './docker-args.js';
export type {
  DockerContainerSettings,
  DockerRunSpec,
  PortMapping,
  VolumeMount,
  ResourceLimits,
  ContainerHealthCheck,
  ContainerInfo,
  DockerFailure,
} from './docker-args.js';
export { loadBackend, createBackendFromConfig, validateBackendConfig, builtinBackends } from './load.js';
export type { LoadBackendOptions, BackendConfig } from './load.js';
export { backendConfigSchema } from './schema.js';
export { createActiveCoordinator } from './coordinator.js';
export { defaultActiveCoordinatorOptions, Phase, CoordinatorState } from './sequence.js';
export type {
  ActiveCoordinator,
  ActiveCoordinatorOptions,
  ActiveStep,
  ActiveSteps,
  PhaseContext,
  PhaseName,
  SequenceStep,
  PhaseTimeouts,
  PhaseTiming,
  Direction,
  SequenceReport,
  CoordinatorEvent,
  CoordinatorMetrics,
  CoordinatorStateValue,
} from './sequence.js';
