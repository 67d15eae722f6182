import { resourceNames, isStreamNotFound } from '@gc/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';

/** Opens an app's existing KV bucket `{platform}_{app}`; undefined when the app has none yet. */
export async function openAppKv(nc: NatsConnection, platform: string, app: string): Promise<KV | undefined> {
  const bucket = resourceNames(platform).app(app).kv;
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
  return new Kvm(nc).open(bucket);
}
