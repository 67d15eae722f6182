export * from './health.js';
export * from './server.js';
export * from './types.js';
