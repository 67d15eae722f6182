export {
  ErrorCode,
  GcError,
  InvalidNameError,
  ConfigError,
  ConnectError,
  JetStreamUnavailableError,
  ServerTooOldError,
  FeatureUnsupportedError,
  TimeoutError,
  FencedError,
  WriteConflictError,
  ClosedError,
  isGcError,
} from './errors.js';
export type { ErrorCodeValue } from './errors.js';
export { realClock, FakeClock, scaledClock } from './clock.js';
export { keepWatching } from './watch.js';
export type { StoppableIterable } from './watch.js';
export { startIdleGc, v8Gc, exposedGc } from './idle-gc.js';
export type { IdleGc, IdleGcOptions, GcFunction } from './idle-gc.js';
export type { Clock, TimerHandle } from './clock.js';
export { createLogger, defaultLoggerOptions, silentLogger } from './logger.js';
export type { Logger, LoggerOptions, LogLevel, LogFormat, LogFields, LogSink } from './logger.js';
export {
  resourceNames,
  validatePlatformName,
  validateAppName,
  validateNodeId,
  validateToken,
  subjectTail,
  RESERVED_APP_NAMES,
} from './names.js';
export type { AppResourceNames, PlatformResourceNames } from './names.js';
export {
  MIN_SERVER_VERSION,
  SERVER_FEATURES,
  parseVersion,
  compareVersions,
  serverVersion,
  supports,
  versionSupports,
  requireFeature,
} from './features.js';
export type { ServerFeature, SemVer } from './features.js';
export { connect, defaultConnectOptions } from './connect.js';
export type { ConnectOptions, Credentials, TlsSettings } from './connect.js';
export {
  EPOCH_HEADER,
  createFence,
  memoryEpochStore,
  fileEpochStore,
  assertEpoch,
  parseEpoch,
} from './epoch.js';
export type { Epoch, EpochStore, Fence } from './epoch.js';
export { decodeFenced, fencedKv } from './fenced-kv.js';
export type { FencedKv, FencedKvBucket, FencedKvOptions, FencedEntry } from './fenced-kv.js';
export { withTimeout } from './util.js';
export { runCommand } from './exec.js';
export type { CommandResult, RunCommandOptions } from './exec.js';
export { getOrCreateMetric, sharedCounter, sharedGauge, sharedHistogram } from './metrics.js';
export { PushQueue } from './queue.js';
export type { AppComponent, AuditSeverity, ComponentContext, ComponentTransition } from './component.js';
export {
  JsApiCode,
  jsApiCode,
  isWrongLastSequence,
  isCasConflict,
  isStreamNotFound,
  isConsumerNotFound,
  isNoResponders,
  isNatsTimeout,
  isAuthorizationError,
} from './nats-errors.js';
export { checkConfig, configFields } from './config-issues.js';
export type { ConfigIssue } from './config-issues.js';
export { parseJsonRecord } from './json-record.js';
