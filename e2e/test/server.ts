// One nats-server (and a connection to it) for a whole e2e test file, the set-up most files share.
import { ServerFixture, type NatsServer, type ServerOptions } from '@gc/testkit';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';

/** What {@link useServer} gives: readable once the file's `beforeAll` hooks have run. */
export interface FileServer {
  /** The nats-server of the file. */
  readonly server: NatsServer;
  /** The file's connection to it (throws when {@link UseServerOptions.connect} is `false`). */
  readonly nc: NatsConnection;
}

/** Options of {@link useServer}. */
export interface UseServerOptions {
  /** Opens the file's connection to the server's URL: default {@link reconnectingConnection}; `false` for none. */
  connect?: ((url: string) => Promise<NatsConnection>) | false;
  /** Options of the server. Default none. */
  server?: ServerOptions;
  /** Runs first in `afterAll`: closes what the tests built on the server (platforms, child processes). */
  closeFirst?: () => Promise<unknown>;
}

/** A connection to `servers` that reconnects forever, every 100 ms (it outlives server restarts). */
export function reconnectingConnection(servers: string | string[]): Promise<NatsConnection> {
  return connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}

/**
 * Starts a nats-server in the calling file's `beforeAll` and opens the file's connection to it; the
 * `afterAll` runs `closeFirst`, then closes the connection, then the server.
 *
 * @example
 * const nats = useServer({ connect: (url) => connect({ servers: url, name: 'e2e-race' }) });
 * it('…', async () => void (await jetstreamManager(nats.nc)));
 */
export function useServer(opts: UseServerOptions = {}): FileServer {
  const fixture = new ServerFixture({ server: opts.server, connect: opts.connect ?? reconnectingConnection });
  beforeAll(() => fixture.start());
  afterAll(async () => {
    await opts.closeFirst?.();
    await fixture.close();
  });
  return fixture;
}
