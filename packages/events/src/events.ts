import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  ClosedError,
  ConfigError,
  ClosableResource,
  resourceNames,
  validateToken,
  type PlatformResourceNames,
} from '@gc/core';
import { ensureDurableConsumer, isNotFound } from './consumers.js';
import { EventsErrorCode, EventsStoreError, PayloadTooLargeError } from './errors.js';
import { decodeEvent, eventHeaders } from './messages.js';
import { metrics, type Metrics } from './metrics.js';
import {
  dec,
  DEAD_LETTER_TOPIC,
  encodePayload,
  posInt,
  resolveEventsOptions,
  validateTopic,
  validateTopicPattern,
} from './options.js';
import { ensureStream, type EventStreams } from './streams.js';
import {
  EventHeaders,
  EventScope,
  type DeadLetter,
  type EventHandler,
  type EventMessage,
  type Events,
  type EventScopeValue,
  type EventsOptions,
  type EventSubscription,
  type PublishOptions,
  type SubscribeOptions,
} from './types.js';

/**
 * Creates the events of a platform (and of one app when `app` is given).
 *
 * Subjects: app-internal `{platform}.{app}.events.{topic}`, platform-wide `{platform}.events.{topic}`. An
 * instance only ever builds subjects under its own app, so one app cannot receive another app's internal
 * events through this API (NATS permissions enforce it in production: see the README).
 *
 * Streams (default on), created when missing: `{platform}_events` (subjects `{platform}.events.>`) and, for an
 * app, `{platform}_{app}_events` (subjects `{platform}.{app}.events.>`). One stream per scope because NATS
 * refuses overlapping subjects in one stream (`{platform}.*.events.>` overlaps `{platform}.events.>`), and a
 * per-app stream is also what per-app NATS permissions can grant. Publishes wait for the stream's
 * acknowledgement; `subscribe(..., { durable })` creates a durable consumer on the scope's stream.
 *
 * @example
 * const ev = await createEvents(nc, { platform: 'prod', app: 'orders', nodeId: 'node-a' });
 * await ev.subscribe('order.*', async (e) => ship(e.data), { durable: 'shipper' });
 * await ev.publish('order.created', { id: 42 });
 */
export async function createEvents(
  nc: NatsConnection,
  opts: Partial<EventsOptions> & Pick<EventsOptions, 'platform'>,
): Promise<Events> {
  const o = resolveEventsOptions(opts);
  const names = resourceNames(o.platform);
  let jsm: JetStreamManager | undefined;
  let streams: EventStreams | undefined;
  if (o.stream) {
    streams = {
      platform: `${names.platform}_events`,
      ...(o.app ? { app: `${names.platform}_${o.app}_events` } : {}),
    };
    try {
      jsm = await jetstreamManager(nc, { timeout: o.publishTimeoutMs });
    } catch (err) {
      throw new EventsStoreError(EventsErrorCode.StoreUnavailable, 'connect', 'events streams', {
        cause: err,
      });
    }
    const explicit = { maxAgeMs: opts.maxAgeMs !== undefined, maxBytes: opts.maxBytes !== undefined };
    await ensureStream(jsm, streams.platform, `${names.platform}.events.>`, o, explicit);
    if (streams.app) await ensureStream(jsm, streams.app, `${names.platform}.${o.app}.events.>`, o, explicit);
  }
  return new EventsImpl(nc, names, o, streams, jsm);
}

class EventsImpl extends ClosableResource implements Events {
  readonly platform: string;
  readonly app: string | undefined;
  readonly streams: EventStreams | undefined;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager | undefined;
  readonly #o: EventsOptions;
  readonly #subs = new Set<EventSubscription>();
  readonly #m: Metrics;
  #closed = false;

  constructor(
    nc: NatsConnection,
    names: PlatformResourceNames,
    o: EventsOptions,
    streams: EventStreams | undefined,
    jsm: JetStreamManager | undefined,
  ) {
    super();
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: o.publishTimeoutMs });
    this.#jsm = jsm;
    this.#o = o;
    this.platform = names.platform;
    this.app = o.app;
    this.streams = streams;
    this.#m = metrics(o.registry);
  }

  #scope(scope: EventScopeValue | undefined): EventScopeValue {
    const s = scope ?? (this.app ? EventScope.App : EventScope.Platform);
    if (s !== EventScope.App && s !== EventScope.Platform) {
      throw new ConfigError('events.scope', `must be "app" or "platform", got ${JSON.stringify(s)}`);
    }
    if (s === EventScope.App && !this.app) {
      throw new ConfigError(
        'events.scope',
        'app-internal events need an app: createEvents(nc, { platform, app })',
      );
    }
    return s;
  }

  #subject(scope: EventScopeValue, tail: string): string {
    return scope === EventScope.App
      ? `${this.platform}.${this.app}.events.${tail}`
      : `${this.platform}.events.${tail}`;
  }

  #prefixLength(scope: EventScopeValue): number {
    return this.#subject(scope, 'x').length - 1;
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new ClosedError(`events of ${this.app ?? this.platform} (${what})`);
  }

  #headers(): MsgHdrs {
    return eventHeaders(this.app, this.#o.nodeId);
  }

  async publish(topic: string, data: unknown, opts: Partial<PublishOptions> = {}): Promise<void> {
    this.#checkOpen('publish');
    const t = validateTopic(topic);
    const scope = this.#scope(opts.scope);
    const bytes = encodePayload(t, data);
    const max = this.#nc.info?.max_payload ?? Infinity;
    if (bytes.length > max) throw new PayloadTooLargeError(t, bytes.length, max);
    await this.#send(this.#subject(scope, t), t, bytes, this.#headers());
    this.#m.published?.inc({ platform: this.platform, app: this.app ?? '', scope });
  }

  async #send(subject: string, topic: string, bytes: Uint8Array, h: MsgHdrs): Promise<void> {
    if (!this.streams) {
      this.#nc.publish(subject, bytes, { headers: h });
      return;
    }
    try {
      await this.#js.publish(subject, bytes, {
        headers: h,
        msgID: h.get(EventHeaders.Id),
        timeout: this.#o.publishTimeoutMs,
        retries: 2,
      });
    } catch (err) {
      throw new EventsStoreError(EventsErrorCode.PublishFailed, 'publish', `event ${topic}`, { cause: err });
    }
  }

  #message<T>(scope: EventScopeValue, m: Msg | JsMsg, deliveries: number, seq?: number): EventMessage<T> {
    return decodeEvent<T>(m.subject.slice(this.#prefixLength(scope)), scope, m, deliveries, seq);
  }

  #reportError(err: Error, subject: string, scope: EventScopeValue): void {
    this.#o.logger.warn('event handler failed', { subject, err });
    try {
      this.#o.onError?.(err, { subject, topic: subject.slice(this.#prefixLength(scope)) });
    } catch (cbErr) {
      this.#o.logger.error('events onError callback threw', { err: cbErr });
    }
  }

  #count(scope: EventScopeValue, result: string): void {
    this.#m.handled?.inc({ platform: this.platform, app: this.app ?? '', scope, result });
  }

  async subscribe<T = unknown>(
    topic: string,
    handler: EventHandler<T>,
    opts: Partial<SubscribeOptions> = {},
  ): Promise<EventSubscription> {
    this.#checkOpen('subscribe');
    const t = validateTopicPattern(topic);
    const scope = this.#scope(opts.scope);
    if (typeof handler !== 'function')
      throw new ConfigError('events.subscribe.handler', 'must be a function');
    const subject = this.#subject(scope, t);
    const sub =
      opts.durable === undefined
        ? this.#subscribeCore(t, subject, scope, handler, opts)
        : await this.#subscribeDurable(t, subject, scope, handler, opts);
    this.#subs.add(sub);
    return sub;
  }

  #subscribeCore<T>(
    topic: string,
    subject: string,
    scope: EventScopeValue,
    handler: EventHandler<T>,
    opts: Partial<SubscribeOptions>,
  ): EventSubscription {
    if (opts.queue !== undefined) validateToken('queue group', opts.queue);
    const sub: Subscription = this.#nc.subscribe(subject, opts.queue ? { queue: opts.queue } : {});
    const loop = (async () => {
      for await (const m of sub as AsyncIterable<Msg>) {
        let event: EventMessage<T>;
        try {
          event = this.#message<T>(scope, m, 1);
        } catch (err) {
          this.#count(scope, 'malformed');
          this.#reportError(err as Error, m.subject, scope);
          continue;
        }
        try {
          await handler(event);
          this.#count(scope, 'ok');
        } catch (err) {
          this.#count(scope, 'failed');
          this.#reportError(err as Error, m.subject, scope);
        }
      }
    })();
    const s: EventSubscription = {
      topic,
      subject,
      durable: undefined,
      stop: async () => {
        this.#subs.delete(s);
        if (!sub.isClosed()) sub.unsubscribe();
        await loop;
      },
      [Symbol.asyncDispose]: () => s.stop(),
    };
    return s;
  }

  #consumerName(scope: EventScopeValue, durable: string): string {
    return `${this.app ?? 'platform'}__${scope}__${durable}`;
  }

  async #subscribeDurable<T>(
    topic: string,
    subject: string,
    scope: EventScopeValue,
    handler: EventHandler<T>,
    opts: Partial<SubscribeOptions>,
  ): Promise<EventSubscription> {
    const stream = scope === EventScope.App ? this.streams?.app : this.streams?.platform;
    if (!stream || !this.#jsm) {
      throw new ConfigError('events.stream', 'durable subscriptions need the events streams (stream: true)');
    }
    const durable = validateToken('durable', opts.durable);
    if (opts.queue !== undefined) {
      throw new ConfigError(
        'events.subscribe.queue',
        'durable subscriptions share work by durable name, not queue',
      );
    }
    const maxDeliver = posInt('events.subscribe.maxDeliver', opts.maxDeliver ?? this.#o.maxDeliver);
    const ackWaitMs = posInt('events.subscribe.ackWaitMs', opts.ackWaitMs ?? this.#o.ackWaitMs);
    const retryDelayMs = posInt('events.subscribe.retryDelayMs', opts.retryDelayMs ?? this.#o.retryDelayMs);
    const name = this.#consumerName(scope, durable);
    const what = `durable subscription ${durable} on ${stream}`;
    await ensureDurableConsumer(
      this.#jsm,
      stream,
      { name, durable, subject, maxDeliver, ackWaitMs, deliverFrom: opts.deliverFrom },
      what,
    );
    let msgs: ConsumerMessages;
    try {
      const consumer = await this.#js.consumers.get(stream, name);
      msgs = await consumer.consume({ max_messages: 64 });
    } catch (err) {
      throw new EventsStoreError(EventsErrorCode.StoreUnavailable, 'consume', what, { cause: err });
    }
    const deadLetter = async (m: JsMsg, reason: DeadLetter['reason'], error: Error) => {
      m.term(`${reason}: ${error.message}`.slice(0, 200));
      this.#count(scope, 'dead_lettered');
      const topicOf = m.subject.slice(this.#prefixLength(scope));
      const dl: DeadLetter = {
        stream,
        consumer: name,
        subject: m.subject,
        topic: topicOf,
        scope,
        seq: m.seq,
        deliveries: m.info.deliveryCount,
        reason,
        error: error.message,
        payload: dec.decode(m.data),
      };
      this.#o.logger.error('event dead-lettered', { ...dl, payload: undefined });
      try {
        this.#o.onDeadLetter?.(dl);
      } catch (cbErr) {
        this.#o.logger.error('events onDeadLetter callback threw', { err: cbErr });
      }
      if (topicOf === DEAD_LETTER_TOPIC) return; // never dead-letter a dead letter
      try {
        const bytes = encodePayload(DEAD_LETTER_TOPIC, dl);
        await this.#send(this.#subject(scope, DEAD_LETTER_TOPIC), DEAD_LETTER_TOPIC, bytes, this.#headers());
      } catch (err) {
        this.#o.logger.error('could not publish a dead letter', { err, subject: m.subject, seq: m.seq });
      }
    };
    const loop = (async () => {
      for await (const m of msgs as AsyncIterable<JsMsg>) {
        let event: EventMessage<T>;
        try {
          event = this.#message<T>(scope, m, m.info.deliveryCount, m.seq);
        } catch (err) {
          this.#count(scope, 'malformed');
          await deadLetter(m, 'malformed', err as Error);
          continue;
        }
        try {
          await handler(event);
          m.ack();
          this.#count(scope, 'ok');
        } catch (err) {
          this.#count(scope, 'failed');
          this.#o.logger.warn('durable event handler failed', {
            subject: m.subject,
            deliveries: m.info.deliveryCount,
            err,
          });
          if (m.info.deliveryCount >= maxDeliver) await deadLetter(m, 'failed', err as Error);
          else m.nak(retryDelayMs);
        }
      }
    })();
    const s: EventSubscription = {
      topic,
      subject,
      durable,
      stop: async () => {
        this.#subs.delete(s);
        await msgs.close();
        await loop;
      },
      [Symbol.asyncDispose]: () => s.stop(),
    };
    return s;
  }

  async deleteDurable(
    durable: string,
    opts: Partial<Pick<SubscribeOptions, 'scope'>> = {},
  ): Promise<boolean> {
    this.#checkOpen('deleteDurable');
    validateToken('durable', durable);
    const scope = this.#scope(opts.scope);
    const stream = scope === EventScope.App ? this.streams?.app : this.streams?.platform;
    if (!stream || !this.#jsm) return false;
    try {
      return await this.#jsm.consumers.delete(stream, this.#consumerName(scope, durable));
    } catch (err) {
      if (isNotFound(err)) return false;
      throw new EventsStoreError(EventsErrorCode.StoreUnavailable, 'delete consumer', `durable ${durable}`, {
        cause: err,
      });
    }
  }

  protected async closeResources(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#subs].map((s) => s.stop()));
  }
}
