// The JetStream consumers of durable subscriptions: created when missing, checked against the subject,
// delivery limits brought to the configured ones.
import { nanos } from '@nats-io/nats-core';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { DurableConflictError, EventsErrorCode, EventsStoreError } from './errors.js';
import type { SubscribeOptions } from './types.js';

/** What the consumer of one durable subscription is created with. */
export interface DurableConsumer {
  /** Consumer name on the stream. */
  name: string;
  /** Durable name the subscriber gave. */
  durable: string;
  /** Filter subject. */
  subject: string;
  maxDeliver: number;
  ackWaitMs: number;
  deliverFrom: SubscribeOptions['deliverFrom'];
}

/** Whether `err` says the consumer does not exist. */
export function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/**
 * Creates consumer `c` on `stream` when missing; throws {@link DurableConflictError} when it exists with
 * another filter subject; updates its `maxDeliver` and `ackWaitMs` when they changed. `what` names the
 * subscription in errors.
 */
export async function ensureDurableConsumer(
  jsm: JetStreamManager,
  stream: string,
  c: DurableConsumer,
  what: string,
): Promise<void> {
  try {
    const info = await jsm.consumers.info(stream, c.name).catch((err: unknown) => {
      if (isNotFound(err)) return null;
      throw err;
    });
    if (!info) {
      await jsm.consumers.add(stream, {
        durable_name: c.name,
        filter_subject: c.subject,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(c.ackWaitMs),
        max_deliver: c.maxDeliver,
        deliver_policy: c.deliverFrom === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
        max_ack_pending: 1000,
      });
    } else if (info.config.filter_subject !== c.subject) {
      throw new DurableConflictError(c.durable, info.config.filter_subject ?? '(none)', c.subject);
    } else if (info.config.max_deliver !== c.maxDeliver || info.config.ack_wait !== nanos(c.ackWaitMs)) {
      await jsm.consumers.update(stream, c.name, {
        max_deliver: c.maxDeliver,
        ack_wait: nanos(c.ackWaitMs),
      });
    }
  } catch (err) {
    if (err instanceof DurableConflictError) throw err;
    throw new EventsStoreError(EventsErrorCode.StoreUnavailable, 'create consumer', what, { cause: err });
  }
}
