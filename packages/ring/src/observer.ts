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

/** The {@link RingObserver} returned by {@link openRingObserver}: its members are bound (arrow functions). */
class Observer extends ClosableResource implements RingObserver {
  readonly platform: string;
  readonly app: string;
  readonly bucket: string;
  readonly partitionCount: number;
  readonly #view: RingView;

  constructor(view: RingView, kv: KV, names: RingNames, partitions: number) {
    super();
    this.#view = view;
    this.platform = names.platform;
    this.app = names.app;
    this.bucket = names.bucket;
    this.partitionCount = partitions;
    const check = (partition: unknown): number => checkPartition(partition, partitions);
    this.snapshot = (): RingSnapshot => view.snapshot(names.platform, names.app, undefined);
    // eslint-disable-next-line @typescript-eslint/require-await -- async for the one watch idiom; live at once
    this.watch = async (): Promise<RingWatcher> => view.watch(names.platform, names.app, undefined);
    this.ownerOf = (key) => view.ownerOf(key);
    this.partitionOf = (key) => partitionOfKey(key, partitions);
    this.pin = async (partition, node) => {
      const p = check(partition);
      if (typeof node !== 'string' || !view.members.has(node))
        throw new UnknownNodeError(node, [...view.members.keys()].sort());
      await updatePins(kv, names, view, (pins) => {
        pins[String(p)] = node;
      });
    };
    this.unpin = async (partition) => {
      const p = check(partition);
      await updatePins(kv, names, view, (pins) => {
        delete pins[String(p)];
      });
    };
  }

  readonly snapshot: RingObserver['snapshot'];
  readonly watch: RingObserver['watch'];
  readonly ownerOf: RingObserver['ownerOf'];
  readonly partitionOf: RingObserver['partitionOf'];
  readonly pin: RingObserver['pin'];
  readonly unpin: RingObserver['unpin'];

  protected closeResources(): Promise<void> {
    this.#view.close();
    return Promise.resolve();
  }
}
