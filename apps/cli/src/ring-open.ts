import type { NatsConnection } from '@nats-io/nats-core';
import { isStreamNotFound } from '@gc/core';
import { openRingObserver, RingStoreError, type RingObserver } from '@gc/ring';

/**
 * Opens a read-only view of an app's ring for an operator command; undefined when the app has no ring (no
 * ring bucket: it does not run in ring mode, or no member ever joined; or a bucket without a stored
 * partition count). Other failures (timeouts, JetStream down) are thrown.
 */
export async function openAppRing(
  nc: NatsConnection,
  platform: string,
  app: string,
): Promise<RingObserver | undefined> {
  try {
    return await openRingObserver(nc, { platform, app });
  } catch (err) {
    if (err instanceof RingStoreError && (isStreamNotFound(err.cause) || err.op.startsWith('read config')))
      return undefined;
    throw err;
  }
}
