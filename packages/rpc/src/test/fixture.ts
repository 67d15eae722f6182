import { startServer, type NatsServer, type ServerOptions } from '@gc/testkit';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Rig } from './helpers.js';

/**
 * The shared setup of the rpc test files that run on a real nats-server. Call it once at the top of a
 * test file: it starts one nats-server (with `opts`) before the file's tests and stops it after them, and
 * returns the file's {@link Rig} on that server, whose connections, servers and clients are closed after
 * each test.
 */
export function rpcFixture(opts?: ServerOptions): Rig {
  let server: NatsServer | undefined;
  const rig = new Rig(() => {
    if (!server) throw new Error('rpcFixture: the nats-server is not started (use the rig inside a test)');
    return server.url;
  });
  beforeAll(async () => {
    server = await startServer(opts);
  });
  afterEach(() => rig.close());
  afterAll(async () => {
    await server?.close();
    server = undefined;
  });
  return rig;
}
