import type { Closable, Logger } from '@gc/core';
import type { Registry } from 'prom-client';

/** Where an event goes: inside one app (`{platform}.{app}.events.{topic}`) or platform-wide (`{platform}.events.{topic}`). */
export const EventScope = { App: 'app', Platform: 'platform' } as const;
/** One of {@link EventScope}. */
export type EventScopeValue = (typeof EventScope)[keyof typeof EventScope];

/** Headers gc sets on every event. */
export const EventHeaders = {
  Id: 'Gc-Event-Id',
  Time: 'Gc-Event-Time',
  SourceApp: 'Gc-Event-Source-App',
  SourceNode: 'Gc-Event-Source-Node',
} as const;

/** A received event. */
export interface EventMessage<T = unknown> {
  /** Topic (the subject after `…events.`). */
  topic: string;
  subject: string;
  scope: EventScopeValue;
  /** The JSON payload. */
  data: T;
  /** Event id (set by gc publishers). */
  id?: string;
  /** ISO time of publishing on the source node. */
  time?: string;
  source: { app?: string; node?: string };
  /** 1 for the first delivery; more on redeliveries of durable subscriptions. */
  deliveries: number;
  /** Stream sequence (durable subscriptions). */
  seq?: number;
}

/** Handles one event. A throw (or rejection) on a durable subscription leads to a redelivery. */
export type EventHandler<T = unknown> = (event: EventMessage<T>) => void | Promise<void>;

/** Options of `publish`. */
export interface PublishOptions {
  /** Default: `app` when the Events has an app, else `platform`. */
  scope: EventScopeValue;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Default: `app` when the Events has an app, else `platform`. */
  scope: EventScopeValue;
  /**
   * Durable name: the subscription is a JetStream durable consumer on the events stream, survives restarts,
   * and instances with the same name share the work. Without it: a core NATS subscription (at most once).
   */
  durable?: string;
  /** Core subscriptions: a queue group (one member receives each event). */
  queue?: string;
  /** Durable: deliveries before an event is dead-lettered. Default {@link EventsOptions.maxDeliver}. */
  maxDeliver?: number;
  /** Durable: time the handler has before the server redelivers, in ms. Default {@link EventsOptions.ackWaitMs}. */
  ackWaitMs?: number;
  /** Durable: delay before a failed event is redelivered, in ms. Default {@link EventsOptions.retryDelayMs}. */
  retryDelayMs?: number;
  /** Durable, on first creation: `new` (default) or `all` stored events. */
  deliverFrom?: 'new' | 'all';
}

/** A running subscription. */
export interface EventSubscription {
  readonly topic: string;
  readonly subject: string;
  readonly durable: string | undefined;
  /** Stops receiving (a durable consumer stays on the server). Resolves when the handler in progress finished. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A dead-lettered event: published on topic `gc.dead-letter` of the same scope and passed to `onDeadLetter`. */
export interface DeadLetter {
  stream: string;
  consumer: string;
  subject: string;
  topic: string;
  scope: EventScopeValue;
  seq: number;
  deliveries: number;
  /** `malformed` (not JSON) or `failed` (handler failed `maxDeliver` times). */
  reason: 'malformed' | 'failed';
  error: string;
  /** The payload as text (may not be JSON). */
  payload: string;
}

/** Options of {@link createEvents}. */
export interface EventsOptions {
  /** Platform name. Required. */
  platform: string;
  /** App whose internal events this instance uses. Default none (platform-wide events only). */
  app?: string;
  /** Node id written as the event source. Default none. */
  nodeId?: string;
  /**
   * Use the JetStream streams `{platform}_events` and (with an app) `{platform}_{app}_events`, created when
   * missing: publishes are acknowledged by the stream and durable subscriptions are possible. Default true.
   * With false: core NATS only.
   */
  stream: boolean;
  /** Stream limit by age in ms. Default 7 days. */
  maxAgeMs: number;
  /**
   * Limit by size of each stream in bytes (JetStream reserves it from the server's storage); -1 for none.
   * Default 64 MiB.
   */
  maxBytes: number;
  /** Stream replicas when created (1, 3 or 5). Default 1. */
  replicas: number;
  /** Publish acknowledgement timeout in ms. Default 5000. */
  publishTimeoutMs: number;
  /** Default deliveries before dead-lettering. Default 5. */
  maxDeliver: number;
  /** Default ack wait in ms. Default 30000. */
  ackWaitMs: number;
  /** Default redelivery delay after a failure in ms. Default 1000. */
  retryDelayMs: number;
  /** Logger. Default silent. */
  logger: Logger;
  /** Prometheus registry for `gc_events_*` metrics. Default none. */
  registry?: Registry;
  /** Called for every dead-lettered event (the platform audits it). Must not throw. */
  onDeadLetter?: (dl: DeadLetter) => void;
  /** Called when a handler of a core subscription throws or a received payload is not JSON. Must not throw. */
  onError?: (err: Error, event: { subject: string; topic: string }) => void;
}

/** App-internal and platform-wide events of one platform (and optionally one app). */
export interface Events extends Closable {
  readonly platform: string;
  readonly app: string | undefined;
  /**
   * The JetStream streams used: `platform` = `{platform}_events`, `app` = `{platform}_{app}_events`;
   * undefined with `stream: false`.
   */
  readonly streams: { platform: string; app?: string } | undefined;
  /**
   * Publishes a JSON payload on a topic (dotted tokens, no wildcards). With the stream: resolves when the
   * stream stored it. Throws `InvalidNameError`, `InvalidPayloadError`, `PayloadTooLargeError`,
   * `EventsStoreError` (`GC_EVENTS_PUBLISH_FAILED`).
   */
  publish(topic: string, data: unknown, opts?: Partial<PublishOptions>): Promise<void>;
  /** Subscribes to a topic or pattern (`order.*`, `order.>`, `>`). */
  subscribe<T = unknown>(
    topic: string,
    handler: EventHandler<T>,
    opts?: Partial<SubscribeOptions>,
  ): Promise<EventSubscription>;
  /** Deletes a durable subscription's consumer from the server. */
  deleteDurable(durable: string, opts?: Partial<Pick<SubscribeOptions, 'scope'>>): Promise<boolean>;
  /** Stops every subscription. Idempotent. */
  close(): Promise<void>;
}
