import type { NatsConnection } from '@nats-io/nats-core';
import { realClock, silentLogger } from '@gc/core';
import { openConn, startPrimaryEngine } from './primary/engine.js';
import type { Primary, PrimaryOptions } from './types.js';
import { createWorkerPrimary } from './worker/facade.js';

/** Defaults of {@link PrimaryOptions} (platform, app, path and epoch have none). */
export function defaultPrimaryOptions(): Omit<PrimaryOptions, 'platform' | 'app' | 'path' | 'epoch'> {
  return {
    create: true,
    pollIntervalMs: 10,
    watchFiles: true,
    idlePollIntervalMs: 250,
    checkpointFrames: 1000,
    synchronous: false,
    publishWindow: 64,
    publishTimeoutMs: 5000,
    syncTimeoutMs: 30_000,
    busyTimeoutMs: 5000,
    checkpointLockTimeoutMs: 50,
    streamReplicas: 1,
    maxChunkBytes: 0,
    snapshotTip: true,
    unprovenState: 'refuse',
    minTxid: 0,
    verifyIntervalMs: 300_000,
    clock: realClock,
    logger: silentLogger,
    onEvent: undefined,
    worker: undefined,
  };
}

/**
 * Starts replicating the WAL-mode database at `options.path` to the app's WAL stream as leader with
 * `options.epoch`. On start it computes the database checksum and compares it with the stream's: equal
 * means continuity (the stream already holds this state); otherwise (empty stream, or writes the stream
 * never saw) it publishes the whole database as one `full` transaction and emits `resync`.
 *
 * @example
 * const primary = await createPrimary(nc, { platform: 'prod', app: 'orders', path: '/data/orders.db', epoch: 7 });
 * await primary.write((db) => db.prepare('INSERT INTO t VALUES (?)').run(1));
 * await primary.sync(); // now in the stream
 */
export async function createPrimary(
  nc: NatsConnection,
  options: Partial<PrimaryOptions> & Pick<PrimaryOptions, 'platform' | 'app' | 'path' | 'epoch'>,
): Promise<Primary> {
  const o: PrimaryOptions = { ...defaultPrimaryOptions(), ...options };
  if (o.worker) return createWorkerPrimary(o, (path) => openConn(path, o));
  return startPrimaryEngine(nc, o, undefined);
}
