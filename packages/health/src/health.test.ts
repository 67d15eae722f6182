import { FakeClock } from '@gc/core';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createHealth } from './health.js';
import { startHealthServer } from './server.js';
import type { HealthChange } from './types.js';

describe('health checks (fake clock)', () => {
  it('runs each check on its interval and reports changes', async () => {
    const clock = new FakeClock();
    const health = createHealth({ clock });
    let ok = true;
    let runs = 0;
    health.register(
      'db',
      () => {
        runs++;
        return ok ? true : 'disk full';
      },
      { intervalMs: 1000 },
    );
    const changes: HealthChange[] = [];
    health.onChange((c) => changes.push(c));
    await clock.advance(0);
    expect(health.report()).toMatchObject({ state: 'healthy', ready: true });
    ok = false;
    await clock.advance(1000);
    expect(runs).toBe(2);
    expect(health.report()).toMatchObject({ state: 'unhealthy', ready: false });
    expect(health.report().checks[0]).toMatchObject({ detail: 'disk full', consecutiveFailures: 1 });
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['unknown->healthy', 'healthy->unhealthy']);
    await health.close();
    await clock.advance(5000);
    expect(runs).toBe(2);
  });

  it('fails a check that exceeds its timeout and aborts its signal', async () => {
    const clock = new FakeClock();
    const health = createHealth({ clock });
    let aborted = false;
    health.register(
      'slow',
      (signal) =>
        new Promise<void>((resolve) => signal.addEventListener('abort', () => ((aborted = true), resolve()))),
      {
        timeoutMs: 500,
      },
    );
    await clock.advance(500);
    expect(aborted).toBe(true);
    expect(health.report().checks[0]).toMatchObject({ state: 'unhealthy', detail: 'timed out after 500 ms' });
    await health.close();
  });

  it('does not run a check whose dependency is unhealthy, and says why', async () => {
    const clock = new FakeClock();
    const health = createHealth({ clock });
    let natsUp = false;
    let dbRuns = 0;
    health.register('nats', () => natsUp, { intervalMs: 1000 });
    health.register('db', () => void dbRuns++, { intervalMs: 1000, dependsOn: ['nats'] });
    await clock.advance(0);
    expect(dbRuns).toBe(0);
    expect(health.report().checks.find((c) => c.name === 'db')).toMatchObject({
      state: 'unhealthy',
      detail: 'waiting for nats to be healthy',
    });
    natsUp = true;
    await health.runAll();
    expect(dbRuns).toBe(1);
    expect(health.report().state).toBe('healthy');
    await health.close();
  });

  it('treats non-critical failures as degraded and damps flapping with a threshold', async () => {
    const clock = new FakeClock();
    const health = createHealth({ clock });
    health.register('cache', () => false, {
      critical: false,
      failureThreshold: 2,
      intervalMs: 100,
      readiness: false,
    });
    await clock.advance(0);
    expect(health.report().checks[0]!.state).toBe('unknown');
    await clock.advance(100);
    expect(health.report()).toMatchObject({ state: 'degraded', ready: true });
    await health.close();
  });

  it('refuses bad registrations with the field that is wrong', () => {
    const health = createHealth({ clock: new FakeClock() });
    health.register('a', () => true, { dependsOn: ['b'] });
    expect(() => health.register('b', () => true, { dependsOn: ['a'] })).toThrow(
      /dependency cycle: b -> a -> b/,
    );
    expect(() => health.register('a', () => true)).toThrow(/already registered/);
    expect(() => health.register('c', () => true, { intervalMs: 0 })).toThrow(
      /health\.c\.intervalMs: must be a positive number/,
    );
    expect(() => health.register('bad name', () => true)).toThrow(/invalid health check name/);
    void health.close();
  });
});

describe('HTTP endpoints (real server)', () => {
  it('serves /health, /ready, /status, /metrics and extra routes with the right codes', async () => {
    const health = createHealth();
    let ok = true;
    health.register('db', () => ok, { intervalMs: 60_000 });
    const registry = new Registry();
    const server = await startHealthServer({
      health,
      registry,
      status: () => ({ node: 'a' }),
      routes: { '/': (_req, res) => void res.end('dashboard') },
    });
    await health.runAll();
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/status`)).json()).toEqual({ node: 'a' });
    expect(await (await fetch(`${server.url}/`)).text()).toBe('dashboard');
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/gc_health_check_up\{check="db"\} 1/);
    ok = false;
    await health.runAll();
    const h = await fetch(`${server.url}/health`);
    expect(h.status).toBe(503);
    expect(((await h.json()) as { checks: Array<{ state: string }> }).checks[0]!.state).toBe('unhealthy');
    expect((await fetch(`${server.url}/ready`)).status).toBe(503);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/gc_health_check_up\{check="db"\} 0/);
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/health`, { method: 'POST' })).status).toBe(405);
    await server.close();
    await health.close();
  });

  it('says which port is taken', async () => {
    const health = createHealth();
    const a = await startHealthServer({ health });
    await expect(startHealthServer({ health, port: a.port })).rejects.toThrow(
      `HTTP port ${a.port} on 127.0.0.1 is already taken`,
    );
    await a.close();
    await health.close();
  });

  it('closed() of the checks and of the server: pending until close(), resolved after it', async () => {
    const health = createHealth();
    let finish!: () => void;
    health.register('slow', () => new Promise<boolean>((r) => (finish = () => r(true))), {
      intervalMs: 60_000,
    });
    const server = await startHealthServer({ health });
    const settled: string[] = [];
    void health.closed().then(() => settled.push('health'));
    void server.closed().then(() => settled.push('server'));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toEqual([]);
    await server.close();
    expect(settled).toEqual(['server']);
    const closing = health.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toEqual(['server']); // the running check holds the close
    finish();
    await closing;
    expect(settled).toEqual(['server', 'health']);
    await Promise.all([health.close(), server.close(), health.closed(), server.closed()]);
  });
});
