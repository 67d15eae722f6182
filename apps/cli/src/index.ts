export { startDevCluster, devPidFile } from './dev.js';
export type { DevCluster, DevClusterOptions } from './dev.js';
export { createDashboard } from './dashboard/server.js';
export type {
  ClusterSnapshot,
  Dashboard,
  DashboardOptions,
  RingSource,
  RingView,
} from './dashboard/server.js';
