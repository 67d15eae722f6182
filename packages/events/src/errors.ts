import { GcError, storeFailedMessage } from '@gc/core';

/**
 * Stable error codes of `@gc/events`, on top of the `@gc/core` codes it also uses: `GC_INVALID_NAME`
 * (bad topic, durable or queue name), `GC_INVALID_CONFIG`, `GC_CLOSED`.
 */
export const EventsErrorCode = {
  /** The payload is not JSON-serializable, or a received message is not JSON. */
  InvalidPayload: 'GC_EVENTS_INVALID_PAYLOAD',
  /** The encoded payload is larger than the server's `max_payload`. */
  PayloadTooLarge: 'GC_EVENTS_PAYLOAD_TOO_LARGE',
  /** The events stream did not acknowledge a publish. */
  PublishFailed: 'GC_EVENTS_PUBLISH_FAILED',
  /** The events stream or a durable consumer could not be set up. */
  StoreUnavailable: 'GC_EVENTS_STORE_UNAVAILABLE',
  /** A durable name is already used for another topic. */
  DurableConflict: 'GC_EVENTS_DURABLE_CONFLICT',
} as const;
/** One of {@link EventsErrorCode}. */
export type EventsErrorCodeValue = (typeof EventsErrorCode)[keyof typeof EventsErrorCode];

/** A payload that is not JSON: refused at publish, or received (then the handler is not called). */
export class InvalidPayloadError extends GcError {
  readonly topic: string;

  constructor(topic: string, reason: string, options?: ErrorOptions) {
    super(EventsErrorCode.InvalidPayload, `event ${topic}: payload is not valid JSON (${reason})`, options);
    this.name = 'InvalidPayloadError';
    this.topic = topic;
  }
}

/** The encoded payload exceeds the server's `max_payload`. */
export class PayloadTooLargeError extends GcError {
  readonly topic: string;
  readonly bytes: number;
  readonly maxBytes: number;

  constructor(topic: string, bytes: number, maxBytes: number) {
    super(
      EventsErrorCode.PayloadTooLarge,
      `event ${topic}: payload is ${bytes} bytes, more than the server's max_payload of ${maxBytes}; send a reference (an object store key) instead`,
    );
    this.name = 'PayloadTooLargeError';
    this.topic = topic;
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

/** The events stream failed an operation; `op` names it. */
export class EventsStoreError extends GcError {
  readonly op: string;

  constructor(code: string, op: string, what: string, options?: ErrorOptions) {
    super(code, storeFailedMessage(what, op, options), options);
    this.name = 'EventsStoreError';
    this.op = op;
  }
}

/** A durable name is already bound to another topic (or scope). */
export class DurableConflictError extends GcError {
  readonly durable: string;

  constructor(durable: string, existing: string, wanted: string) {
    super(
      EventsErrorCode.DurableConflict,
      `durable subscription ${durable} already consumes ${existing}, not ${wanted}; pick another durable name or delete it with deleteDurable()`,
    );
    this.name = 'DurableConflictError';
    this.durable = durable;
  }
}
