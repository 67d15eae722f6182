// Events on the wire: the headers a publish sets, and a received message decoded into an `EventMessage`.
import { headers, nuid, type Msg, type MsgHdrs } from '@nats-io/nats-core';
import { InvalidPayloadError } from './errors.js';
import { dec } from './options.js';
import { EventHeaders, type EventMessage, type EventScopeValue } from './types.js';

/** The headers of a new event: a fresh id, the time, and its source app and node when known. */
export function eventHeaders(app: string | undefined, nodeId: string | undefined): MsgHdrs {
  const h = headers();
  h.set(EventHeaders.Id, nuid.next());
  h.set(EventHeaders.Time, new Date().toISOString());
  if (app) h.set(EventHeaders.SourceApp, app);
  if (nodeId) h.set(EventHeaders.SourceNode, nodeId);
  return h;
}

/**
 * Decodes message `m` of `topic` (its JSON payload and the event headers); throws
 * {@link InvalidPayloadError} when the payload is not JSON.
 */
export function decodeEvent<T>(
  topic: string,
  scope: EventScopeValue,
  m: Pick<Msg, 'subject' | 'data' | 'headers'>,
  deliveries: number,
  seq?: number,
): EventMessage<T> {
  const h = m.headers;
  let parsed: T;
  try {
    parsed = JSON.parse(dec.decode(m.data)) as T;
  } catch (err) {
    throw new InvalidPayloadError(topic, (err as Error).message, { cause: err });
  }
  const app = h?.get(EventHeaders.SourceApp);
  const node = h?.get(EventHeaders.SourceNode);
  const id = h?.get(EventHeaders.Id);
  const time = h?.get(EventHeaders.Time);
  return {
    topic,
    subject: m.subject,
    scope,
    data: parsed,
    ...(id ? { id } : {}),
    ...(time ? { time } : {}),
    source: { ...(app ? { app } : {}), ...(node ? { node } : {}) },
    deliveries,
    ...(seq !== undefined ? { seq } : {}),
  };
}
