export { findNatsServer, requireNatsServer, natsServerVersion, workspaceRoot } from './find.js';
export type { ServerFlavor } from './find.js';
export { renderServerConfig } from './config.js';
export type { ServerConfig } from './config.js';
export { NatsServerProcess, assertPortFree, freePort } from './process.js';
export type { NatsServerProcessOptions } from './process.js';
