import { ClosableResource, realClock, silentLogger } from '@gc/core';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { UnknownNodeError } from './errors.js';
import { loadHasher, partitionOfKey } from './hash.js';
import { ringMetrics } from './metrics.js';
import { parseConfigRecord, ringNames, type RingNames } from './records.js';
import { openRingBucket, updatePins } from './bucket.js';
import { RingStoreError } from './errors.js';
import type { RingObserver, RingObserverOptions, RingSnapshot, RingWatcher } from './types.js';
import { checkPartition } from './tables.js';
import { RingView } from './view.js';

/**
 * Opens a read-only view of an app's ring: the partition map, members, moves and pins, live. For the CLI
 * (`gc ring show`), dashboards and tests. Throws `RingStoreError` when the app has no ring.
 *
 * @example
 * const ring = await openRingObserver(nc, { platform: 'prod', app: 'cache' });
 * const s = ring.snapshot(); // owners, counts per node, moving partitions, coordinator
 */
export async function openRingObserver(
  nc: NatsConnection,
  init: Partial<RingObserverOptions> & Pick<RingObserverOptions, 'platform' | 'app'>,
): Promise<RingObserver> {
  const o: RingObserverOptions = { opTimeoutMs: 5000, clock: realClock, logger: silentLogger, ...init };
  await loadHasher();
  const names = ringNames(o.platform, o.app);
  let kv;
  let config;
  try {
    kv = await openRingBucket(nc, names.bucket, 1, o.opTimeoutMs, false);
    const e = await kv.get(names.config);
    config = e && e.operation === 'PUT' ? parseConfigRecord(e.value) : null;
  } catch (err) {
    throw new RingStoreError(`open (does app ${o.app} run in ring mode?)`, names.bucket, { cause: err });
  }
  if (!config) throw new RingStoreError('read config (no ring config stored)', names.bucket);
  const view = new RingView({
    names,
    partitions: config.partitions,
    clock: o.clock,
    logger: o.logger,
    holdTimeoutMs: 10_000,
    maxHeldCalls: 0,
    metrics: ringMetrics(undefined, { platform: names.platform, app: names.app, node: 'observer' }),
  });
  await view.start(kv);
  return new Observer(view, kv, names, config.partitions);
}

/** The {@link RingObserver} returned by {@link openRingObserver}. */
class Observer extends ClosableResource implements RingObserver {
  readonly platform: string;
  readonly app: string;
  readonly bucket: string;
  readonly partitionCount: number;
  readonly #view: RingView;
  readonly #kv: KV;
  readonly #names: RingNames;

  constructor(view: RingView, kv: KV, names: RingNames, partitions: number) {
    super();
    this.#view = view;
    this.#kv = kv;
    this.#names = names;
    this.platform = names.platform;
    this.app = names.app;
    this.bucket = names.bucket;
    this.partitionCount = partitions;
  }

  snapshot(): RingSnapshot {
    return this.#view.snapshot(this.platform, this.app, undefined);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async for the one watch idiom; live at once
  async watch(): Promise<RingWatcher> {
    return this.#view.watch(this.platform, this.app, undefined);
  }

  ownerOf(key: string): string | undefined {
    return this.#view.ownerOf(key);
  }

  partitionOf(key: string): number {
    return partitionOfKey(key, this.partitionCount);
  }

  async pin(partition: number, node: string): Promise<void> {
    const p = checkPartition(partition, this.partitionCount);
    if (typeof node !== 'string' || !this.#view.members.has(node))
      throw new UnknownNodeError(node, [...this.#view.members.keys()].sort());
    await updatePins(this.#kv, this.#names, this.#view, (pins) => {
      pins[String(p)] = node;
    });
  }

  async unpin(partition: number): Promise<void> {
    const p = checkPartition(partition, this.partitionCount);
    await updatePins(this.#kv, this.#names, this.#view, (pins) => {
      delete pins[String(p)];
    });
  }

  protected closeResources(): Promise<void> {
    this.#view.close();
    return Promise.resolve();
  }
}
