import { resourceNames, isStreamNotFound } from '@gc/core';
import { createLocks, type Locks } from '@gc/locks';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';

/** Opens an app's lock bucket (or the platform's with no app); undefined when it does not exist yet. */
export async function openLocks(
  nc: NatsConnection,
  platform: string,
  app: string | undefined,
  owner: string,
): Promise<Locks | undefined> {
  const names = resourceNames(platform);
  const bucket = app ? names.app(app).locks : names.platformLocks;
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
  return createLocks(nc, { bucket, owner });
}
