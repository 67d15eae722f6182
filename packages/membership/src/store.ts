// The membership bucket in NATS: opened (created when missing, per-key TTL detected) and watched for as
// long as the membership runs.
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry, type KvWatchEntry } from '@nats-io/kv';
import { keepWatching, resourceNames, supports } from '@gc/core';
import { MembershipStoreError } from './errors.js';
import type { MembershipOptions } from './types.js';

/** The platform's membership bucket, opened. */
export interface MembershipBucket {
  /** Bucket name (`{platform}_membership`). */
  bucket: string;
  js: JetStreamClient;
  kv: KV;
  /** Whether heartbeats carry a per-key TTL (nats-server ≥ 2.11 and a bucket that allows it). */
  perKeyTtl: boolean;
}

/** Opens the membership bucket of `o.platform`, creating it when missing. */
export async function openMembershipBucket(
  nc: NatsConnection,
  o: MembershipOptions,
): Promise<MembershipBucket> {
  const bucket = resourceNames(o.platform).membership;
  const js = jetstream(nc, { timeout: o.opTimeoutMs });
  const kvm = new Kvm(js);
  const ttlCapable = supports(nc, 'per-key-ttl');
  let kv: KV;
  try {
    kv = await kvm.create(bucket, {
      history: 1,
      replicas: o.replicas,
      ...(ttlCapable ? { markerTTL: Math.max(1000, o.serverTtlMs) } : {}),
    });
  } catch (err) {
    try {
      kv = await kvm.open(bucket);
    } catch {
      throw new MembershipStoreError('open', bucket, { cause: err });
    }
  }
  let perKeyTtl = false;
  if (ttlCapable) {
    try {
      perKeyTtl = (await kv.status()).streamInfo.config.allow_msg_ttl === true;
    } catch (err) {
      throw new MembershipStoreError('status', bucket, { cause: err });
    }
  }
  return { bucket, js, kv, perKeyTtl };
}

/**
 * Passes every entry of the bucket's watch to `observe`, starting with the watch `first`; when a watch
 * fails or ends, a new one is set up 250 ms later. Returns the function that stops watching.
 */
export function watchBucket(
  kv: KV,
  bucket: string,
  first: QueuedIterator<KvWatchEntry>,
  observe: (e: KvEntry) => void,
  o: Pick<MembershipOptions, 'clock' | 'logger'>,
): () => void {
  return keepWatching(first, () => kv.watch(), observe, {
    ...o,
    what: 'membership watch',
    fields: { bucket },
  });
}
