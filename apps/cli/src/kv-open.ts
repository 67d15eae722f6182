import { resourceNames } from '@gc/core';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { streamExists } from './stream-exists.js';

/** Opens an app's existing KV bucket `{platform}_{app}`; undefined when the app has none yet. */
export async function openAppKv(nc: NatsConnection, platform: string, app: string): Promise<KV | undefined> {
  const bucket = resourceNames(platform).app(app).kv;
  if (!(await streamExists(nc, `KV_${bucket}`))) return undefined;
  return new Kvm(nc).open(bucket);
}
