export * from './find.js';
export * from './config.js';
export * from './process.js';
