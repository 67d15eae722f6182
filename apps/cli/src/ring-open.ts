import type { NatsConnection } from '@nats-io/nats-core';
import { isStreamNotFound } from '@gc/core';
import { openRingObserver, RingStoreError, type RingObserver } from '@gc/ring';
import { ExitCode } from './base.js';

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

/**
 * Runs `fn` with a view of the app's ring and closes it afterwards; an app without a ring is "not found"
 * (exit 4) for an operator command.
 */
export async function withAppRing<T>(
  cmd: { error(message: string, opts: { exit: number }): never },
  nc: NatsConnection,
  platform: string,
  app: string,
  fn: (ring: RingObserver) => T | Promise<T>,
): Promise<T> {
  const ring = await openAppRing(nc, platform, app);
  if (!ring)
    cmd.error(
      `app ${app} of platform ${platform} has no ring (it is not a ring-mode app, or no member has joined yet)`,
      { exit: ExitCode.NotFound },
    );
  try {
    return await fn(ring);
  } finally {
    await ring.close();
  }
}
