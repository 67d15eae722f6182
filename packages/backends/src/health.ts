import { request } from 'node:http';
import { request as requestTls } from 'node:https';
import { connect } from 'node:net';
import type { HealthCheck, HealthResult } from './types.js';

/** Probes `check` once. `none` is always healthy. Never throws: failures are unhealthy results. */
export async function probe(check: HealthCheck): Promise<HealthResult> {
  const t0 = performance.now();
  const done = (healthy: boolean, detail: string): HealthResult => ({
    healthy,
    detail,
    latencyMs: performance.now() - t0,
  });
  if (check.type === 'none') return done(true, 'no health check configured');
  if (check.type === 'tcp') {
    const host = check.host ?? '127.0.0.1';
    return new Promise((resolve) => {
      const socket = connect({ host, port: check.port });
      socket.setTimeout(check.timeoutMs ?? 2000);
      socket.once('connect', () => {
        socket.destroy();
        resolve(done(true, `tcp ${host}:${check.port} accepts connections`));
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(done(false, `tcp ${host}:${check.port} timed out`));
      });
      socket.once('error', (err: NodeJS.ErrnoException) =>
        resolve(done(false, `tcp ${host}:${check.port}: ${err.code ?? err.message}`)),
      );
    });
  }
  const min = check.minStatus ?? 200;
  const max = check.maxStatus ?? 399;
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(check.url);
    } catch {
      resolve(done(false, `invalid health URL ${JSON.stringify(check.url)}`));
      return;
    }
    // agent:false: one connection per probe, closed after it, so no pooled socket keeps the process alive.
    const req = (url.protocol === 'https:' ? requestTls : request)(
      url,
      { method: 'GET', agent: false, timeout: check.timeoutMs ?? 2000 },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(done(status >= min && status <= max, `HTTP ${status}`));
      },
    );
    req.once('timeout', () => {
      req.destroy();
      resolve(done(false, `GET ${check.url} timed out`));
    });
    req.once('error', (err: NodeJS.ErrnoException) =>
      resolve(done(false, `GET ${check.url}: ${err.code ?? err.message}`)),
    );
    req.end();
  });
}

/** The host and port a health check talks to, when it has one (for the port-in-use check). */
export function healthEndpoint(check: HealthCheck): { host: string; port: number } | undefined {
  if (check.type === 'tcp') return { host: check.host ?? '127.0.0.1', port: check.port };
  if (check.type === 'http') {
    try {
      const u = new URL(check.url);
      const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
      return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
    } catch {
      return undefined;
    }
  }
  return undefined;
}
