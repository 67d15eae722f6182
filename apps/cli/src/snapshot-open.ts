import { resourceNames, isStreamNotFound } from '@gc/core';
import { createSnapshotStore, type SnapshotStore } from '@gc/snapshot';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';

/** Opens an app's existing snapshot store `{platform}_{app}_snapshots`; undefined when it has none. */
export async function openSnapshots(
  nc: NatsConnection,
  platform: string,
  app: string,
): Promise<SnapshotStore | undefined> {
  const bucket = resourceNames(platform).app(app).snapshots;
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(`OBJ_${bucket}`);
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
  return createSnapshotStore(nc, { platform, app });
}
