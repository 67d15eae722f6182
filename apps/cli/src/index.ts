export { startDevCluster } from './dev.js';
export type { DevCluster, DevClusterOptions } from './dev.js';
