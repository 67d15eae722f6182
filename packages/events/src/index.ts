export { createEvents } from './events.js';
export {
  defaultEventsOptions,
  resolveEventsOptions,
  validateTopic,
  validateTopicPattern,
  encodePayload,
  DEAD_LETTER_TOPIC,
} from './options.js';
export {
  EventsErrorCode,
  InvalidPayloadError,
  PayloadTooLargeError,
  EventsStoreError,
  DurableConflictError,
} from './errors.js';
export type { EventsErrorCodeValue } from './errors.js';
export type { EventStreams } from './streams.js';
export { EventScope, EventHeaders } from './types.js';
export type {
  DeadLetter,
  EventHandler,
  EventMessage,
  Events,
  EventScopeValue,
  EventsOptions,
  EventSubscription,
  PublishOptions,
  SubscribeOptions,
} from './types.js';
