export * from './vip.js';
export * from './options.js';
export * from './schema.js';
export * from './types.js';
export * from './errors.js';
export * from './commands.js';
export * from './component.js';
