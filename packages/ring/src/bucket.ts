// The ring's KV bucket: opening it, the config record (partition count) and the pins record.
import { isCasConflict } from '@gc/core';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { PartitionCountMismatchError, RingStoreError } from './errors.js';
import { DEFAULT_PARTITIONS } from './hash.js';
import {
  encodeJson,
  parseConfigRecord,
  parsePinsRecord,
  type ConfigRecord,
  type RingNames,
} from './records.js';
import type { RingView } from './view.js';

/** A compare-and-set that lost: the key moved on (told by JetStream error code). */
export const isConflict = isCasConflict;

/**
 * The subject a write of `key` goes to: what nats.js's `kv.update` publishes on (its `subjectForKey`, which
 * knows a bucket's own prefix), `$KV.<bucket>.<key>` for another client version. Ring keys need no encoding.
 */
export function kvEditSubject(kv: KV, bucket: string, key: string): string {
  const b = kv as { subjectForKey?: (k: string, edit?: boolean) => string };
  return typeof b.subjectForKey === 'function' ? b.subjectForKey(key, true) : `$KV.${bucket}.${key}`;
}

/** Opens (creating when missing) the ring bucket: history 1, file storage, no TTLs. */
export async function openRingBucket(
  nc: NatsConnection,
  bucket: string,
  replicas: number,
  timeoutMs: number,
  create = true,
): Promise<KV> {
  const kvm = new Kvm(jetstream(nc, { timeout: Math.max(timeoutMs, 5000) }));
  if (!create) return kvm.open(bucket);
  try {
    return await kvm.create(bucket, { history: 1, replicas });
  } catch (err) {
    // An existing bucket created with other settings is used as it is.
    try {
      const kv = await kvm.open(bucket);
      await kv.status();
      return kv;
    } catch {
      throw new RingStoreError('open', bucket, { cause: err });
    }
  }
}

/** Read-modify-write of the pins record (compare-and-set, retried on conflicts); applied to `view` at once. */
export async function updatePins(
  kv: KV,
  names: RingNames,
  view: RingView,
  change: (pins: Record<string, string>) => void,
): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const e = await kv.get(names.pins);
      const cur = e && e.operation === 'PUT' ? (parsePinsRecord(e.value)?.pins ?? {}) : {};
      change(cur);
      const data = encodeJson({ v: 1, pins: cur });
      const rev = e ? await kv.update(names.pins, data, e.revision) : await kv.create(names.pins, data);
      view.observe({ key: names.pins, revision: rev, operation: 'PUT', value: data } as never);
      return;
    } catch (err) {
      if (isConflict(err)) continue;
      throw new RingStoreError('write pins', names.bucket, { cause: err });
    }
  }
  throw new RingStoreError('write pins (kept changing)', names.bucket);
}

/** Reads the stored partition count, storing `requested` (or the default) when the ring is new. */
export async function ensureConfig(
  kv: KV,
  names: RingNames,
  requested: number | undefined,
  nodeId: string,
  wallNow: number,
): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let e;
    try {
      e = await kv.get(names.config);
    } catch (err) {
      throw new RingStoreError('read config', names.bucket, { cause: err });
    }
    const stored = e && e.operation === 'PUT' ? parseConfigRecord(e.value) : null;
    if (stored) {
      if (requested !== undefined && requested !== stored.partitions)
        throw new PartitionCountMismatchError(names.bucket, stored.partitions, requested);
      return stored.partitions;
    }
    const rec: ConfigRecord = {
      v: 1,
      partitions: requested ?? DEFAULT_PARTITIONS,
      createdAt: wallNow,
      createdBy: nodeId,
    };
    try {
      if (e) await kv.update(names.config, encodeJson(rec), e.revision);
      else await kv.create(names.config, encodeJson(rec));
      return rec.partitions;
    } catch (err) {
      if (!isConflict(err)) throw new RingStoreError('write config', names.bucket, { cause: err });
    }
  }
  throw new RingStoreError('write config (kept changing)', names.bucket);
}
