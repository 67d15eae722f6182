import { isStreamNotFound } from '@gc/core';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';

/**
 * Whether JetStream has the stream `name` (a KV bucket's is `KV_<bucket>`, an object store's
 * `OBJ_<bucket>`). Lets a command open what exists without creating what does not.
 */
export async function streamExists(nc: NatsConnection, name: string): Promise<boolean> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(name);
    return true;
  } catch (err) {
    if (isStreamNotFound(err)) return false;
    throw err;
  }
}
