import { ClosableResource, ClosedError, isStreamNotFound, resourceNames, validateAppName } from '@gc/core';
import type { RouteHook, RouteRetry } from '@gc/rpc';
import type { NatsConnection } from '@nats-io/nats-core';
import { RingStoreError } from './errors.js';
import { loadHasher } from './hash.js';
import { ringMetrics } from './metrics.js';
import { defaultRingRouterOptions } from './options.js';
import { parseConfigRecord, ringNames } from './records.js';
import { openRingBucket } from './bucket.js';
import type { RingRouter, RingRouterOptions } from './types.js';
import { RingView } from './view.js';

type Entry = { view: RingView } | { none: number } | { pending: Promise<RingView | undefined> };

/**
 * Key routing for every ring app of a platform, for processes that call ring apps (any node, a CLI, a
 * gateway): opens an app's ring bucket the first time a key of that app is routed and watches it from then
 * on. Apps without a ring bucket get `undefined` (the RPC client falls back to rendezvous hashing); that
 * answer is remembered for `negativeCacheMs`.
 *
 * @example
 * const router = await createRingRouter(nc, { platform: 'prod' });
 * const rpc = createRpcClient(nc, { platform: 'prod', route: router.route });
 * await rpc.api('cache').call('get', { key: 'user:42' }, { to: { key: 'user:42' } });
 */
export async function createRingRouter(
  nc: NatsConnection,
  init: Partial<RingRouterOptions> & Pick<RingRouterOptions, 'platform'>,
): Promise<RingRouter> {
  const given = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined));
  const o: RingRouterOptions = { ...defaultRingRouterOptions(), ...given };
  resourceNames(o.platform);
  await loadHasher();
  return new Router(nc, o);
}

class Router extends ClosableResource implements RingRouter {
  readonly route: RouteHook;
  readonly #nc: NatsConnection;
  readonly #o: RingRouterOptions;
  readonly #apps = new Map<string, Entry>();
  #closed = false;

  constructor(nc: NatsConnection, o: RingRouterOptions) {
    super();
    this.#nc = nc;
    this.#o = o;
    this.route = (app, key, previous) => this.#route(app, key, previous);
  }

  get held(): number {
    let n = 0;
    for (const e of this.#apps.values()) if ('view' in e) n += e.view.held;
    return n;
  }

  ownerOf(app: string, key: string): string | undefined {
    const e = this.#apps.get(app);
    return e && 'view' in e ? e.view.ownerOf(key) : undefined;
  }

  #route(app: string, key: string, previous?: RouteRetry): string | undefined | Promise<string | undefined> {
    if (this.#closed) throw new ClosedError('ring router');
    const e = this.#apps.get(app);
    if (e && 'view' in e) return e.view.route(app, key, previous);
    if (e && 'none' in e && this.#o.clock.now() < e.none) return undefined;
    const pending = e && 'pending' in e ? e.pending : this.#open(app);
    return pending.then((view) => (view ? view.route(app, key, previous) : undefined));
  }

  #open(app: string): Promise<RingView | undefined> {
    validateAppName(app);
    const pending = (async () => {
      const names = ringNames(this.#o.platform, app);
      const none = () => {
        this.#apps.set(app, { none: this.#o.clock.now() + this.#o.negativeCacheMs });
        return undefined;
      };
      let config;
      let kv;
      try {
        kv = await openRingBucket(this.#nc, names.bucket, 1, this.#o.opTimeoutMs, false);
        const e = await kv.get(names.config);
        config = e && e.operation === 'PUT' ? parseConfigRecord(e.value) : null;
      } catch (err) {
        // No bucket: the app is not a ring app (keys fall back to rendezvous hashing). Anything else is a
        // store failure: the call fails with it rather than being sent to a node that may not own the key.
        if (isStreamNotFound(err) || (err as Error)?.name === 'StreamNotFoundError') return none();
        throw new RingStoreError('open', names.bucket, { cause: err });
      }
      if (!config) return none();
      const view = new RingView({
        names,
        partitions: config.partitions,
        clock: this.#o.clock,
        logger: this.#o.logger,
        holdTimeoutMs: this.#o.holdTimeoutMs,
        maxHeldCalls: this.#o.maxHeldCalls,
        metrics: ringMetrics(this.#o.registry, { platform: names.platform, app, node: 'router' }),
      });
      await view.start(kv);
      if (this.#closed) {
        view.close();
        return undefined;
      }
      this.#apps.set(app, { view });
      return view;
    })();
    this.#apps.set(app, { pending });
    pending.catch(() => this.#apps.delete(app));
    return pending;
  }

  protected closeResources(): Promise<void> {
    this.#closed = true;
    for (const e of this.#apps.values()) if ('view' in e) e.view.close();
    this.#apps.clear();
    return Promise.resolve();
  }
}
