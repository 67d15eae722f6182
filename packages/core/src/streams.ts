// A JetStream stream kept within age and size limits: created when missing, its limits brought to the
// configured ones — the set-up of the streams that keep a platform's records (audit trail, events).
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { isStreamNotFound } from './nats-errors.js';

/** The limits and replicas of a stream {@link ensureLimitsStream} sets up. */
export interface LimitsStreamOptions {
  /** Age limit of a message, in ms (also bounds the 2-minute duplicate window). */
  maxAgeMs: number;
  /** Size limit of the stream, in bytes. */
  maxBytes: number;
  /** Replicas when the stream is created. */
  replicas: number;
}

/**
 * Creates the stream `name` over `subject` when it is missing (file storage, limits retention, the oldest
 * messages discarded, the limits of `o`). An existing stream gets only the limits that `explicit` says the
 * caller set itself: an instance opened with the defaults must not reset the retention another one
 * configured. Errors are the JetStream API's, unwrapped.
 */
export async function ensureLimitsStream(
  jsm: JetStreamManager,
  name: string,
  subject: string,
  o: LimitsStreamOptions,
  explicit: { maxAgeMs: boolean; maxBytes: boolean },
): Promise<void> {
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
    return;
  }
  const wanted = {
    ...(explicit.maxAgeMs ? { max_age: limits.max_age } : {}),
    ...(explicit.maxBytes ? { max_bytes: limits.max_bytes } : {}),
  };
  if (Object.entries(wanted).some(([k, v]) => info.config[k as keyof typeof wanted] !== v)) {
    await jsm.streams.update(name, { ...info.config, ...wanted });
  }
}
