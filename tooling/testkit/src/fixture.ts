import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startServer, type NatsServer, type ServerOptions } from './server.js';

/** Options of {@link ServerFixture}. */
export interface ServerFixtureOptions {
  /** Options of the server. Default none. */
  server?: ServerOptions;
  /** Opens the connection to the server's URL. Default a plain `connect({ servers: url })`; `false`: none. */
  connect?: ((url: string) => Promise<NatsConnection>) | false;
}

/**
 * A nats-server and one connection to it, shared by the tests of a file or `describe` block: call
 * {@link ServerFixture.start} in `beforeAll` and {@link ServerFixture.close} in `afterAll`. What the
 * tests build on it can be handed to {@link ServerFixture.track} to be closed first.
 *
 * @example
 * const nats = new ServerFixture({ server: { flavor } });
 * beforeAll(() => nats.start());
 * afterAll(() => nats.close());
 * it('…', async () => void (await nats.nc.flush()));
 */
export class ServerFixture {
  readonly #opts: ServerFixtureOptions;
  readonly #tracked: Array<{ close(): Promise<unknown> }> = [];
  #server: NatsServer | undefined;
  #nc: NatsConnection | undefined;

  constructor(opts: ServerFixtureOptions = {}) {
    this.#opts = opts;
  }

  /** The server (once started). */
  get server(): NatsServer {
    if (!this.#server) throw new Error('ServerFixture: not started (call start() in beforeAll)');
    return this.#server;
  }

  /** The connection (once started, unless `connect` is false). */
  get nc(): NatsConnection {
    if (!this.#nc) throw new Error('ServerFixture: no connection (call start() in beforeAll)');
    return this.#nc;
  }

  /** Starts the server, then opens the connection. */
  async start(): Promise<void> {
    this.#server = await startServer(this.#opts.server);
    const open = this.#opts.connect ?? ((url: string) => connect({ servers: url }));
    if (open) this.#nc = await open(this.#server.url);
  }

  /** Has {@link ServerFixture.close} close `c` (in the order tracked, before the connection); returns `c`. */
  track<T extends { close(): Promise<unknown> }>(c: T): T {
    this.#tracked.push(c);
    return c;
  }

  /** Closes what was tracked, one after the other, then the connection, then the server. */
  async close(): Promise<void> {
    for (const c of this.#tracked.splice(0)) await c.close();
    await this.#nc?.close();
    await this.#server?.close();
  }
}
