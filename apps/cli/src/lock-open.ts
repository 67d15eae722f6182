import { resourceNames } from '@gc/core';
import { createLocks, type Locks } from '@gc/locks';
import type { NatsConnection } from '@nats-io/nats-core';
import { streamExists } from './stream-exists.js';

/** Opens an app's lock bucket (or the platform's with no app); undefined when it does not exist yet. */
export async function openLocks(
  nc: NatsConnection,
  platform: string,
  app: string | undefined,
  owner: string,
): Promise<Locks | undefined> {
  const names = resourceNames(platform);
  const bucket = app ? names.app(app).locks : names.platformLocks;
  if (!(await streamExists(nc, `KV_${bucket}`))) return undefined;
  return createLocks(nc, { bucket, owner });
}
