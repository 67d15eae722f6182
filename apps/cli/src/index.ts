export { startDevCluster, devPidFile } from './dev.js';
export type { DevCluster, DevClusterOptions } from './dev.js';
