// The RPC server of one app instance: its subscriptions (any, leader, node, presence), leader and health
// polling, key admission, replies, and close. How a request is run is in dispatch.ts.
import {
  ClosableResource,
  createLogger,
  parseEpoch,
  realClock,
  validateNodeId,
  type Clock,
  type Logger,
} from '@gc/core';
import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { decodeKeyHeader, encodeError, RpcHeader } from './codec.js';
import { Dispatcher, type Via } from './dispatch.js';
import {
  BadPayloadError,
  NotLeaderError,
  NoInstanceError,
  NotOwnerError,
  PayloadTooLargeError,
} from './errors.js';
import { defaultIdempotencyOptions } from './idempotency.js';
import { methodOf, rpcSubjects, type RpcSubjects } from './subjects.js';
import type { HandleOptions, Handler, RpcServer, RpcServerInit, RpcServerOptions } from './types.js';

/** Defaults for {@link RpcServerOptions} (the required `platform`, `app`, `nodeId` are empty). */
export function defaultRpcServerOptions(): RpcServerOptions {
  return {
    platform: '',
    app: '',
    nodeId: '',
    pollIntervalMs: 100,
    handlerTimeoutMs: 5000,
    middleware: [],
    idempotency: defaultIdempotencyOptions(),
  };
}

class Server extends ClosableResource implements RpcServer {
  readonly platform: string;
  readonly app: string;
  readonly nodeId: string;
  readonly #nc: NatsConnection;
  readonly #o: RpcServerOptions;
  readonly #subjects: RpcSubjects;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #dispatcher: Dispatcher;
  #anySub: Subscription | undefined;
  #leaderSub: Subscription | undefined;
  #nodeSub: Subscription | undefined;
  #presenceSub: Subscription | undefined;
  #leaderEpoch: number | undefined;
  #healthy = true;
  #timer: object | undefined;
  #inFlight = 0;
  /** The `graceMs` of the first `close()`. */
  #graceMs = 5000;
  #refreshing: Promise<void> = Promise.resolve();

  constructor(nc: NatsConnection, o: RpcServerOptions) {
    super();
    this.#nc = nc;
    this.#o = o;
    this.#subjects = rpcSubjects(o.platform, o.app);
    this.platform = this.#subjects.platform;
    this.app = this.#subjects.app;
    this.nodeId = validateNodeId(o.nodeId);
    this.#clock = o.clock ?? realClock;
    this.#log = (o.logger ?? createLogger({ name: 'gc-rpc' })).child({ app: this.app, node: this.nodeId });
    this.#dispatcher = new Dispatcher(nc, o, this.platform, this.app, this.nodeId, this.#log, this.#clock);
    this.#nodeSub = nc.subscribe(this.#subjects.subscriptions.node(this.nodeId), {
      callback: (err, msg) => this.#onMessage(err, msg, 'node'),
    });
    this.#syncSubscriptions();
    this.#schedulePoll();
  }

  get servingLeader(): boolean {
    return this.#leaderSub !== undefined;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  handle<In = unknown, Out = unknown>(
    method: string,
    fn: Handler<In, Out>,
    opts: HandleOptions<In> = {},
  ): void {
    this.#dispatcher.handle(method, fn, opts);
  }

  unhandle(method: string): void {
    this.#dispatcher.unhandle(method);
  }

  methods(): string[] {
    return this.#dispatcher.methods();
  }

  refresh(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.#refreshing = this.#refreshing.then(async () => {
      this.#syncSubscriptions();
      if (!this.#nc.isClosed()) await this.#nc.flush();
    });
    return this.#refreshing;
  }

  /** Brings subscriptions in line with `healthy()`/`isLeader()`; true when something changed. */
  #syncSubscriptions(): boolean {
    if (this.closing || this.#nc.isClosed()) return false;
    let changed = false;
    let healthy = true;
    let leaderEpoch: number | undefined;
    try {
      healthy = this.#o.healthy ? this.#o.healthy() : true;
      leaderEpoch = this.#o.isLeader?.() ? this.#o.epoch?.() : undefined;
    } catch (err) {
      this.#log.error('isLeader/epoch/healthy hook threw; serving as unhealthy non-leader', {
        error: (err as Error).message,
      });
      healthy = false;
      leaderEpoch = undefined;
    }
    this.#healthy = healthy;
    if (healthy && !this.#anySub) {
      this.#anySub = this.#nc.subscribe(this.#subjects.subscriptions.any, {
        queue: this.#subjects.queue,
        callback: (err, msg) => this.#onMessage(err, msg, 'any'),
      });
      this.#presenceSub = this.#nc.subscribe(this.#subjects.presence, {
        callback: (_err, msg) => {
          if (this.#healthy) msg.respond(this.nodeId);
        },
      });
      changed = true;
    } else if (!healthy && this.#anySub) {
      this.#anySub.unsubscribe();
      this.#presenceSub?.unsubscribe();
      this.#anySub = this.#presenceSub = undefined;
      changed = true;
    }
    const lead = leaderEpoch !== undefined && Number.isSafeInteger(leaderEpoch) && leaderEpoch > 0;
    if (lead && !this.#leaderSub) {
      this.#leaderSub = this.#nc.subscribe(this.#subjects.subscriptions.leader, {
        callback: (err, msg) => this.#onMessage(err, msg, 'leader'),
      });
      changed = true;
      this.#log.info('serving leader RPC', { epoch: leaderEpoch });
    } else if (!lead && this.#leaderSub) {
      this.#leaderSub.unsubscribe();
      this.#leaderSub = undefined;
      changed = true;
      this.#log.info('stopped serving leader RPC', { epoch: this.#leaderEpoch });
    }
    this.#leaderEpoch = lead ? leaderEpoch : undefined;
    return changed;
  }

  #schedulePoll(): void {
    if (!this.#o.isLeader && !this.#o.healthy) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#syncSubscriptions();
      if (!this.closing) this.#schedulePoll();
    }, this.#o.pollIntervalMs);
  }

  #onMessage(err: Error | null, msg: Msg, via: Via): void {
    if (err) {
      this.#log.error('RPC subscription failed', { via, error: err.message });
      return;
    }
    if (!msg.reply) return; // a publish, not a request: nothing to answer
    this.#inFlight++;
    void this.#serve(msg, via).finally(() => {
      this.#inFlight--;
    });
  }

  async #serve(msg: Msg, via: Via): Promise<void> {
    const method = methodOf(msg.subject, this.#subjects.prefixLength);
    let epoch: number | undefined;
    let replyHeaders: MsgHdrs | undefined;
    let admitted: (() => void) | undefined;
    try {
      // A balanced `any` call reached this instance by its node subject: it serves it only while it is in
      // the `any` pool (healthy), as the queue group would.
      if (via === 'node' && !this.#healthy && msg.headers?.get(RpcHeader.Balanced))
        throw new NoInstanceError(this.app, method, 'any', {
          cause: new Error(`instance ${this.nodeId} is not healthy`),
        });
      if (this.#o.admitKey) {
        const raw = msg.headers?.get(RpcHeader.Key);
        if (raw) admitted = await this.#admit(method, raw);
      }
      if (via === 'leader') {
        epoch = this.#currentLeaderEpoch(method, msg.headers);
        replyHeaders = natsHeaders();
        replyHeaders.set(RpcHeader.Epoch, String(epoch));
      }
      const result = await this.#dispatcher.dispatch(msg, method, via, epoch);
      if (result.error) {
        replyHeaders ??= natsHeaders();
        replyHeaders.set(RpcHeader.Error, result.error);
      }
      const max = this.#nc.info?.max_payload ?? Infinity;
      if (result.body.length > max) {
        throw new PayloadTooLargeError(this.app, method, 'reply', result.body.length, max);
      }
      msg.respond(result.body, replyHeaders ? { headers: replyHeaders } : undefined);
    } catch (err) {
      const { code, body } = encodeError(err, this.app, method);
      replyHeaders ??= natsHeaders();
      replyHeaders.set(RpcHeader.Error, code);
      try {
        msg.respond(body, { headers: replyHeaders });
      } catch (e) {
        this.#log.error('could not send an RPC error reply', { method, error: (e as Error).message });
      }
    } finally {
      admitted?.();
    }
  }

  /** Runs the `admitKey` hook; any refusal becomes a {@link NotOwnerError} about this call. */
  async #admit(method: string, raw: string): Promise<() => void> {
    const key = decodeKeyHeader(raw);
    if (key === undefined) throw new BadPayloadError(this.app, method, 'the Gc-Rpc-Key header is malformed');
    try {
      const r = this.#o.admitKey!(key, method);
      return r instanceof Promise ? await r : r;
    } catch (err) {
      if (err instanceof NotOwnerError && err.app === this.app && err.method === method) throw err;
      if (err instanceof NotOwnerError) {
        throw new NotOwnerError(this.app, method, err.nodeId, err.reason, {
          partition: err.partition,
          revision: err.revision,
          ...(err.detail ? { detail: err.detail } : {}),
        });
      }
      throw new NotOwnerError(this.app, method, this.nodeId, 'admission-failed', {
        detail: (err as Error)?.message ?? String(err),
      });
    }
  }

  /** The epoch to serve a leader request under, or a NotLeaderError. */
  #currentLeaderEpoch(method: string, h: MsgHdrs | undefined): number {
    let epoch: number | undefined;
    try {
      epoch = this.#o.isLeader?.() ? this.#o.epoch?.() : undefined;
    } catch (err) {
      this.#log.error('isLeader/epoch hook threw', { error: (err as Error).message });
    }
    if (epoch === undefined || !(epoch > 0)) {
      void this.refresh();
      throw new NotLeaderError(this.app, method, `node ${this.nodeId} is not the leader`);
    }
    const seen = parseEpoch(h?.get(RpcHeader.Epoch));
    if (seen !== undefined && seen > epoch) {
      // The caller has seen a newer leader: this instance was deposed and has not noticed yet.
      void this.refresh();
      throw new NotLeaderError(
        this.app,
        method,
        `the caller has seen leader epoch ${seen}, node ${this.nodeId} serves the older epoch ${epoch}`,
        epoch,
      );
    }
    return epoch;
  }

  override close(graceMs = 5000): Promise<void> {
    if (!this.closing) this.#graceMs = graceMs;
    return super.close();
  }

  protected async closeResources(): Promise<void> {
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    for (const s of [this.#anySub, this.#leaderSub, this.#nodeSub, this.#presenceSub]) {
      try {
        s?.unsubscribe();
      } catch {
        // the connection is already closed: nothing is subscribed
      }
    }
    this.#anySub = this.#leaderSub = this.#nodeSub = this.#presenceSub = undefined;
    const until = this.#clock.now() + this.#graceMs;
    while (this.#inFlight > 0 && this.#clock.now() < until) await this.#clock.sleep(10);
    this.#dispatcher.close();
    // Closing: replies that cannot be flushed now are lost with the connection anyway.
    if (!this.#nc.isClosed()) await this.#nc.flush().catch(() => undefined);
  }
}

/**
 * Starts serving RPC for one instance of an app: a queue-group subscription for `to: 'any'`, a
 * per-node subscription for `to: { node }`, a leader subscription while `isLeader()` says so, and
 * presence answers for key routing. Register methods with {@link RpcServer.handle}.
 *
 * @example
 * const server = createRpcServer(nc, { platform: 'prod', app: 'orders', nodeId: 'n1' });
 * server.handle('get', async ({ id }: { id: string }) => ({ id, status: 'paid' }));
 */
export function createRpcServer(nc: NatsConnection, opts: RpcServerInit): RpcServer {
  const d = defaultRpcServerOptions();
  const o: RpcServerOptions = {
    ...d,
    ...opts,
    idempotency: { ...d.idempotency, ...opts.idempotency },
  };
  if (!(o.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${o.pollIntervalMs}`);
  if (!(o.handlerTimeoutMs > 0))
    throw new RangeError(`handlerTimeoutMs must be > 0, got ${o.handlerTimeoutMs}`);
  return new Server(nc, o);
}
