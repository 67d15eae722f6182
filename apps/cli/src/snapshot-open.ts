import { resourceNames } from '@gc/core';
import { createSnapshotStore, type SnapshotStore } from '@gc/snapshot';
import type { NatsConnection } from '@nats-io/nats-core';
import { streamExists } from './stream-exists.js';

/** Opens an app's existing snapshot store `{platform}_{app}_snapshots`; undefined when it has none. */
export async function openSnapshots(
  nc: NatsConnection,
  platform: string,
  app: string,
): Promise<SnapshotStore | undefined> {
  const bucket = resourceNames(platform).app(app).snapshots;
  if (!(await streamExists(nc, `OBJ_${bucket}`))) return undefined;
  return createSnapshotStore(nc, { platform, app });
}
