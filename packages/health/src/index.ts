export { createHealth, defaultCheckOptions, defaultHealthOptions } from './health.js';
export { startHealthServer } from './server.js';
export type { HealthServer, HealthServerOptions, RouteHandler } from './server.js';
export { HealthState } from './types.js';
export type {
  CheckFn,
  CheckOptions,
  CheckResult,
  CheckStatus,
  Health,
  HealthChange,
  HealthOptions,
  HealthReport,
} from './types.js';
