import { connect, silentLogger } from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';
import { createRpcClient } from '../client.js';
import { createRpcServer } from '../server.js';
import type { RpcClient, RpcClientInit, RpcServer, RpcServerInit } from '../types.js';

/**
 * Test-only helpers: connections and servers/clients that are closed together by {@link Rig.close} (the
 * rig can be used again after it). `url` is the NATS server's, or a function that returns it when the rig
 * first connects (for a server started later, in a `beforeAll`).
 */
export class Rig {
  readonly #url: string | (() => string);
  readonly #conns: NatsConnection[] = [];
  readonly #closers: Array<() => Promise<void>> = [];

  constructor(url: string | (() => string)) {
    this.#url = url;
  }

  /** The NATS server's URL. */
  get url(): string {
    return typeof this.#url === 'string' ? this.#url : this.#url();
  }

  async conn(name = 'test'): Promise<NatsConnection> {
    const nc = await connect({ servers: this.url, name, reconnectTimeWaitMs: 50, requireJetStream: false });
    this.#conns.push(nc);
    return nc;
  }

  async server(opts: RpcServerInit, nc?: NatsConnection): Promise<RpcServer> {
    const s = createRpcServer(nc ?? (await this.conn(opts.nodeId)), { logger: silentLogger, ...opts });
    this.#closers.push(() => s.close(200));
    await s.refresh();
    return s;
  }

  async client(opts: RpcClientInit, nc?: NatsConnection): Promise<RpcClient> {
    const c = createRpcClient(nc ?? (await this.conn('client')), { logger: silentLogger, ...opts });
    this.#closers.push(() => c.close());
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.#closers.splice(0).reverse()) await c().catch(() => undefined);
    for (const nc of this.#conns.splice(0)) await nc.close().catch(() => undefined);
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Awaits `p` and returns what it rejected with (fails when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the promise resolved');
}
