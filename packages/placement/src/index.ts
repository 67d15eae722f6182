export * from './selector.js';
export { schedule } from './schedule.js';
export * from './plan.js';
export { defaultScheduleOptions, resolveScheduleOptions, MAX_WEIGHT, MAX_PREFERENCE } from './options.js';
export { placementSpecSchema, migrationPolicySchema } from './schema.js';
export { windowStatus, validateWindow } from './windows.js';
export type { WindowStatus } from './windows.js';
export * from './errors.js';
export * from './types.js';
