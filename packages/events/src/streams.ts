// The JetStream streams that keep events: created when missing, limits brought to the configured ones.
import { isStreamNotFound } from '@gc/core';
import { nanos } from '@nats-io/nats-core';
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
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
    const limits = { max_age: nanos(o.maxAgeMs), max_bytes: o.maxBytes };
    const info = await jsm.streams.info(name).catch((err: unknown) => {
      if (isStreamNotFound(err)) return null; // created below
      throw err;
    });
    if (!info) {
      await jsm.streams.add({
        name,
        subjects: [subject],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        num_replicas: o.replicas,
        duplicate_window: nanos(Math.min(2 * 60_000, o.maxAgeMs)),
        ...limits,
      });
    } else {
      // Only limits set explicitly are applied to an existing stream (an instance with defaults must not
      // reset the retention another one configured).
      const wanted = {
        ...(explicit.maxAgeMs ? { max_age: limits.max_age } : {}),
        ...(explicit.maxBytes ? { max_bytes: limits.max_bytes } : {}),
      };
      if (Object.entries(wanted).some(([k, v]) => info.config[k as keyof typeof wanted] !== v)) {
        await jsm.streams.update(name, { ...info.config, ...wanted });
      }
    }
  } catch (err) {
    throw new EventsStoreError(EventsErrorCode.StoreUnavailable, 'ensure stream', `events stream ${name}`, {
      cause: err,
    });
  }
}
