// The JetStream streams that keep events: created when missing, limits brought to the configured ones.
import { ensureLimitsStream } from '@gc/core';
import type { JetStreamManager } from '@nats-io/jetstream';
import { EventsErrorCode, EventsStoreError } from './errors.js';
import type { EventsOptions } from './types.js';

/** The streams an `Events` instance uses. */
export interface EventStreams {
  /** `{platform}_events`: subjects `{platform}.events.>`. */
  platform: string;
  /** `{platform}_{app}_events`: subjects `{platform}.{app}.events.>` (when the instance has an app). */
  app?: string;
}

/** Creates `name` with `subject` when missing; brings its age/size limits to the configured ones. */
export async function ensureStream(
  jsm: JetStreamManager,
  name: string,
  subject: string,
  o: EventsOptions,
  explicit: { maxAgeMs: boolean; maxBytes: boolean },
): Promise<void> {
  try {
    // Only limits set explicitly are applied to an existing stream (an instance with defaults must not
    // reset the retention another one configured).
    await ensureLimitsStream(jsm, name, subject, o, explicit);
  } catch (err) {
    throw new EventsStoreError(EventsErrorCode.StoreUnavailable, 'ensure stream', `events stream ${name}`, {
      cause: err,
    });
  }
}
