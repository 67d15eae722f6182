export * from './events.js';
export {
  defaultEventsOptions,
  resolveEventsOptions,
  validateTopic,
  validateTopicPattern,
  encodePayload,
  DEAD_LETTER_TOPIC,
} from './options.js';
export * from './errors.js';
export type { EventStreams } from './streams.js';
export * from './types.js';
