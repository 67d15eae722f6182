import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { connect, type Logger, silentLogger } from '@gc/core';
import { NatsServerProcess, assertPortFree } from '@gc/nats-server';

/** Options of {@link startDevCluster}. */
export interface DevClusterOptions {
  /** Client port of the embedded nats-server. Default 4222. */
  port: number;
  /** Monitoring port of the embedded nats-server. Default 8222. */
  httpPort: number;
  /** Folder for the server's config, log and JetStream store (kept between runs). Default `.gc-dev`. */
  dir: string;
  /** Logger. Default silent. */
  logger: Logger;
}

/** Defaults for {@link DevClusterOptions}. */
export function defaultDevClusterOptions(): DevClusterOptions {
  return { port: 4222, httpPort: 8222, dir: '.gc-dev', logger: silentLogger };
}

/** A running local development cluster. */
export interface DevCluster {
  /** The embedded server's client URL. */
  readonly url: string;
  /** Its monitoring URL. */
  readonly monitorUrl: string;
  /** The nats-server version. */
  readonly serverVersion: string;
  /** The nats-server binary used. */
  readonly serverBin: string;
  /** Stops everything the dev cluster started. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the embedded nats-server for `gc dev` (JetStream on, store kept in `dir`) and checks it with
 * the same `connect()` every gc node uses, so a server without JetStream or older than 2.10 fails
 * here with the typed error.
 */
export async function startDevCluster(opts: Partial<DevClusterOptions> = {}): Promise<DevCluster> {
  const o = { ...defaultDevClusterOptions(), ...opts };
  const dir = resolve(o.dir, 'nats');
  mkdirSync(dir, { recursive: true });
  await assertPortFree('127.0.0.1', o.port).catch((err: Error) => {
    throw new Error(`${err.message} (use gc dev --port to pick another)`, { cause: err });
  });
  await assertPortFree('127.0.0.1', o.httpPort).catch((err: Error) => {
    throw new Error(`${err.message} (use gc dev --http-port to pick another)`, { cause: err });
  });
  const server = new NatsServerProcess({
    dir,
    config: { name: 'gc-dev', port: o.port, httpPort: o.httpPort },
  });
  o.logger.info('starting nats-server', { bin: server.bin, version: server.version, port: o.port });
  await server.start();
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: server.url, name: 'gc-dev' });
  } catch (err) {
    await server.stop();
    throw err;
  }
  let closed = false;
  return {
    url: server.url,
    monitorUrl: `http://127.0.0.1:${o.httpPort}`,
    serverVersion: server.version,
    serverBin: server.bin,
    async close() {
      if (closed) return;
      closed = true;
      await nc.close().catch(() => undefined);
      await server.stop();
    },
  };
}
