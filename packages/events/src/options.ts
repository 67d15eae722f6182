// Options of @gc/events, topic validation and payload encoding.
import {
  ConfigError,
  InvalidNameError,
  resourceNames,
  silentLogger,
  subjectTail,
  validateAppName,
  validateNodeId,
} from '@gc/core';
import { InvalidPayloadError } from './errors.js';
import type { EventsOptions } from './types.js';

export const DAY_MS = 24 * 60 * 60 * 1000;
/** Topic of dead-lettered events (in the scope of the failed event). */
export const DEAD_LETTER_TOPIC = 'gc.dead-letter';

/** Defaults of {@link EventsOptions}; `platform` has none and is empty here. */
export function defaultEventsOptions(): EventsOptions {
  return {
    platform: '',
    stream: true,
    maxAgeMs: 7 * DAY_MS,
    maxBytes: 64 * 1024 * 1024,
    replicas: 1,
    publishTimeoutMs: 5000,
    maxDeliver: 5,
    ackWaitMs: 30_000,
    retryDelayMs: 1000,
    logger: silentLogger,
  };
}

export function posInt(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new ConfigError(path, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Merges `opts` over {@link defaultEventsOptions} and validates. */
export function resolveEventsOptions(
  opts: Partial<EventsOptions> & Pick<EventsOptions, 'platform'>,
): EventsOptions {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: EventsOptions = { ...defaultEventsOptions(), ...given };
  resourceNames(o.platform);
  if (o.app !== undefined) validateAppName(o.app);
  if (o.nodeId !== undefined) validateNodeId(o.nodeId);
  for (const k of ['maxAgeMs', 'publishTimeoutMs', 'maxDeliver', 'ackWaitMs', 'retryDelayMs'] as const) {
    posInt(`events.${k}`, o[k]);
  }
  if (o.maxBytes !== -1) posInt('events.maxBytes', o.maxBytes);
  if (![1, 3, 5].includes(o.replicas)) {
    throw new ConfigError('events.replicas', `must be 1, 3 or 5, got ${JSON.stringify(o.replicas)}`);
  }
  return o;
}

/** Validates a topic for publishing: dotted tokens, no wildcards. Throws `InvalidNameError`. */
export function validateTopic(topic: unknown): string {
  const t = subjectTail('event topic', topic as string);
  if (t.split('.').some((x) => x === '*' || x === '>')) {
    throw new InvalidNameError('event topic', t, 'wildcards "*" and ">" are only allowed when subscribing');
  }
  return t;
}

/** Validates a topic pattern for subscribing (`a.*`, `a.>`, `>`). Throws `InvalidNameError`. */
export function validateTopicPattern(topic: unknown): string {
  return subjectTail('event topic', topic as string);
}

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** Encodes a payload as JSON; throws `InvalidPayloadError` for anything JSON cannot represent. */
export function encodePayload(topic: string, data: unknown): Uint8Array {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new InvalidPayloadError(topic, (err as Error).message, { cause: err });
  }
  if (json === undefined)
    throw new InvalidPayloadError(topic, `${typeof data} cannot be represented in JSON`);
  return enc.encode(json);
}
