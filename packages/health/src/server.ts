import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClosableResource, type Closable } from '@gc/core';
import { Gauge, type Registry } from 'prom-client';
import { HealthState, type Health } from './types.js';

/** A handler for an extra route (the dashboard, an app's own endpoints). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** The checks behind `/health` and `/ready`. */
  health: Health;
  /** Prometheus registry served at `/metrics`; without one `/metrics` answers 404. */
  registry?: Registry;
  /** Returns the JSON served at `/status` (the platform's view of nodes and apps). Default `{}`. */
  status?: () => unknown;
  /** Listen address. Default `127.0.0.1`. */
  host?: string;
  /** Listen port; 0 picks a free one. Default 0. */
  port?: number;
  /** Extra GET routes by exact path (for example `/` for a dashboard). */
  routes?: Record<string, RouteHandler>;
}

/** A running HTTP server. */
export interface HealthServer extends Closable {
  /** `http://host:port`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * Serves `/health` (200 when healthy or degraded, 503 when unhealthy), `/ready` (200 when every
 * readiness check is healthy, else 503), `/status` (JSON from `status()`), `/metrics` (Prometheus text),
 * plus any extra routes. Exports a `gc_health_check_up{check}` gauge to the registry.
 *
 * @example
 * const server = await startHealthServer({ health, registry, port: 8080 });
 * // curl http://127.0.0.1:8080/ready
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const { health, registry } = opts;
  if (registry && !registry.getSingleMetric('gc_health_check_up')) {
    new Gauge({
      name: 'gc_health_check_up',
      help: 'Whether a health check is currently healthy (1) or not (0)',
      labelNames: ['check'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of health.report().checks)
          this.set({ check: c.name }, c.state === HealthState.Healthy ? 1 : 0);
      },
    });
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const extra = opts.routes?.[path];
    if (extra) return extra(req, res);
    switch (path) {
      case '/health': {
        const r = health.report();
        return json(res, r.state === HealthState.Unhealthy ? 503 : 200, r);
      }
      case '/ready': {
        const r = health.report();
        return json(res, r.ready ? 200 : 503, { ready: r.ready, state: r.state });
      }
      case '/status':
        return json(res, 200, opts.status ? await opts.status() : {});
      case '/metrics':
        if (!registry) return json(res, 404, { error: 'no metrics registry configured' });
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(await registry.metrics());
        return;
      default:
        return json(res, 404, {
          error: `no route ${path}`,
          routes: ['/health', '/ready', '/status', '/metrics', ...Object.keys(opts.routes ?? {})],
        });
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `HTTP port ${opts.port} on ${host} is already taken: choose another port (http.port) or stop the other process`
            : `cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  return new HealthServerImpl(server, host, (server.address() as AddressInfo).port);
}

class HealthServerImpl extends ClosableResource implements HealthServer {
  readonly url: string;
  readonly port: number;
  readonly #server: Server;

  constructor(server: Server, host: string, port: number) {
    super();
    this.#server = server;
    this.url = `http://${host}:${port}`;
    this.port = port;
  }

  protected closeResources(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
