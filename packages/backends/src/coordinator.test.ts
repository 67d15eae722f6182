import { createFence, FakeClock, FencedError } from '@gc/core';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createActiveCoordinator } from './coordinator.js';
import type { ActiveCoordinatorOptions, ActiveStep, CoordinatorEvent } from './sequence.js';
import { PhaseError } from './errors.js';
import { BackendState, type Backend, type BackendStateValue } from './types.js';

// The coordinator's logic runs on a fake clock against an in-memory Backend (the contract, not an
// OS tool); real processes behind it are covered in e2e/backends.

function recorder() {
  const calls: string[] = [];
  const step = (
    name: string,
    opts: { failUp?: Error; failDown?: Error; upMs?: number } = {},
    clock?: FakeClock,
  ): ActiveStep => ({
    async activate(ctx) {
      calls.push(`${name}.up@${ctx.epoch}`);
      if (opts.upMs && clock) await clock.sleep(opts.upMs, ctx.signal);
      if (opts.failUp) throw opts.failUp;
    },
    async deactivate(ctx) {
      calls.push(`${name}.down${ctx.reason ? `(${ctx.reason})` : ''}`);
      if (opts.failDown) throw opts.failDown;
    },
  });
  return { calls, step };
}

class MemoryBackend implements Backend {
  readonly name = 'mem';
  readonly kind = 'memory';
  state: BackendStateValue = BackendState.Stopped;
  healthy = true;
  starts = 0;
  stops = 0;
  constructor(readonly calls: string[]) {}
  async start() {
    this.starts++;
    this.calls.push('backend.start');
    this.state = BackendState.Running;
  }
  async stop() {
    this.stops++;
    this.calls.push('backend.stop');
    this.state = BackendState.Stopped;
  }
  async health() {
    const ok = this.state === BackendState.Running && this.healthy;
    return { healthy: ok, detail: ok ? 'ok' : 'sick', latencyMs: 0 };
  }
  async status() {
    return {
      kind: this.kind,
      state: this.state,
      pid: undefined,
      exitCode: undefined,
      signal: undefined,
      restarts: 0,
      sinceWallMs: 0,
      detail: {},
    };
  }
  async logs() {
    return [];
  }
  async close() {
    await this.stop();
  }
  async [Symbol.asyncDispose]() {
    await this.close();
  }
}

/**
 * A coordinator over one MemoryBackend alone that checks its health every 100 ms on a fake clock and
 * restarts it (mode `always`, within a 60 s window) when unhealthy, recording its events; `o` sets
 * the limits (by default one restart after a fixed 10 ms) and anything else.
 */
function restartingCoordinator(
  o: {
    unhealthyThreshold: number;
    backendMs: number;
    maxRestarts?: number;
    backoff?: { initialBackoffMs: number; maxBackoffMs: number; factor: number };
  } & Partial<ActiveCoordinatorOptions>,
) {
  const clock = new FakeClock();
  const { calls } = recorder();
  const backend = new MemoryBackend(calls);
  const events: CoordinatorEvent[] = [];
  const {
    backendMs,
    maxRestarts = 1,
    backoff = { initialBackoffMs: 10, maxBackoffMs: 10, factor: 1 },
    ...rest
  } = o;
  const c = createActiveCoordinator({
    steps: { backend },
    clock,
    healthIntervalMs: 100,
    timeouts: { promoteMs: 1, vipMs: 1, backendMs, onActiveMs: 1 },
    backendRestart: { mode: 'always', maxRestarts, windowMs: 60_000, ...backoff },
    onEvent: (e) => events.push(e),
    ...rest,
  });
  return { clock, calls, backend, events, c };
}

describe('active coordinator', () => {
  it('runs promote → vip → backend → onActive, and the reverse, timing and auditing each phase', async () => {
    const clock = new FakeClock();
    const { calls, step } = recorder();
    const backend = new MemoryBackend(calls);
    const events: CoordinatorEvent[] = [];
    const c = createActiveCoordinator({
      steps: {
        promote: step('promote', { upMs: 40 }, clock),
        vip: step('vip'),
        backend,
        onActive: step('hook'),
      },
      clock,
      healthIntervalMs: 0,
      onEvent: (e) => events.push(e),
    });
    const done = c.activate(3);
    await clock.advance(40);
    const report = await done;
    expect(calls).toEqual(['promote.up@3', 'vip.up@3', 'backend.start', 'hook.up@3']);
    expect(report.ok).toBe(true);
    expect(report.phases.map((p) => [p.phase, p.durationMs])).toEqual([
      ['promote', 40],
      ['vip', 0],
      ['backend', 0],
      ['onActive', 0],
    ]);
    expect(report.totalMs).toBe(40);
    expect(c.state).toBe('active');
    expect(c.epoch).toBe(3);
    // Activating again with the same epoch is a no-op.
    expect(await c.activate(3)).toBe(report);

    calls.length = 0;
    const down = await c.deactivate('lost leadership');
    expect(calls).toEqual([
      'hook.down(lost leadership)',
      'backend.stop',
      'vip.down(lost leadership)',
      'promote.down(lost leadership)',
    ]);
    expect(down?.ok).toBe(true);
    expect(c.state).toBe('passive');
    expect(await c.deactivate()).toBeUndefined();

    const states = events.filter((e) => e.type === 'state').map((e) => (e as { to: string }).to);
    expect(states).toEqual(['activating', 'active', 'deactivating', 'passive']);
    const audits = events.filter((e) => e.type === 'audit').map((e) => (e as { action: string }).action);
    expect(audits).toContain('activate.begin');
    expect(audits).toContain('activate.promote');
    expect(audits).toContain('activate.done');
    expect(audits).toContain('deactivate.vip');
    expect(audits).toContain('deactivate.done');
    expect(
      events.some((e) => e.type === 'metric' && e.name === 'gc_activation_duration_ms' && e.value === 40),
    ).toBe(true);
    expect(c.metrics()).toMatchObject({ activations: 1, deactivations: 1, activationFailures: 0 });
    await c.close();
    await c.close();
    expect(c.state).toBe('closed');
  });

  it('closed() is pending until close() has finished, also when a deactivation phase fails', async () => {
    const { calls, step } = recorder();
    const c = createActiveCoordinator({
      steps: { vip: step('vip', { failDown: new Error('address busy') }) },
      healthIntervalMs: 0,
    });
    await c.activate(1);
    let closed = false;
    void c.closed().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(false);
    await expect(c.close()).rejects.toBeInstanceOf(PhaseError);
    expect(closed).toBe(true);
    await expect(c.close()).rejects.toBeInstanceOf(PhaseError); // a second close() shares the first's outcome
    expect(c.state).toBe('closed');
    expect(calls).toEqual(['vip.up@1', 'vip.down(close)']);
  });

  it('undoes the phases already done, in reverse, when a phase fails, and names the phase', async () => {
    const { calls, step } = recorder();
    const backend = new MemoryBackend(calls);
    const c = createActiveCoordinator({
      steps: {
        promote: step('promote'),
        vip: step('vip', { failUp: new Error('arping missing') }),
        backend,
        onActive: step('hook'),
      },
      healthIntervalMs: 0,
    });
    const err = await c.activate(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PhaseError);
    expect((err as PhaseError).phase).toBe('vip');
    expect((err as Error).message).toMatch(/activate phase "vip" failed: arping missing/);
    expect(calls).toEqual(['promote.up@1', 'vip.up@1', 'promote.down(activation failed in vip)']);
    expect(backend.starts).toBe(0);
    expect(c.state).toBe('passive');
    expect(c.metrics().activationFailures).toBe(1);
    expect(c.metrics().lastActivation?.ok).toBe(false);
  });

  it('runs any ordered sequence of named steps, each with its own timeout, undone in reverse on failure', async () => {
    const { calls, step } = recorder();
    const clock = new FakeClock();
    const backend = new MemoryBackend(calls);
    const c = createActiveCoordinator({
      steps: {},
      sequence: [
        { name: 'database', ...step('database') },
        { name: 'file-lock', ...step('file-lock') },
        { name: 'service', backend },
        { name: 'slow', timeoutMs: 50, ...step('slow', { upMs: 1000 }, clock) },
      ],
      healthIntervalMs: 0,
      clock,
    });
    const up = c.activate(7);
    await clock.advance(100);
    const err = await up.catch((e: unknown) => e);
    expect((err as PhaseError).phase).toBe('slow');
    expect((err as Error).message).toMatch(/within 50 ms/);
    expect(calls.filter((x) => !x.startsWith('backend'))).toEqual([
      'database.up@7',
      'file-lock.up@7',
      'slow.up@7',
      'file-lock.down(activation failed in slow)',
      'database.down(activation failed in slow)',
    ]);
    expect(backend.starts).toBe(1);
    expect(backend.stops).toBe(1);
    expect(() =>
      createActiveCoordinator({
        steps: {},
        sequence: [
          { name: 'a', backend },
          { name: 'a', backend },
        ],
      }),
    ).toThrow(/two steps named a/);
  });

  it('bounds each phase with its timeout and stops a backend that never got healthy', async () => {
    const clock = new FakeClock();
    const { calls, step } = recorder();
    const backend = new MemoryBackend(calls);
    backend.healthy = false;
    const c = createActiveCoordinator({
      steps: { vip: step('vip'), backend },
      timeouts: { promoteMs: 1000, vipMs: 1000, backendMs: 5000, onActiveMs: 1000 },
      clock,
      healthIntervalMs: 0,
    });
    const p = c.activate(2).catch((e: unknown) => e);
    await clock.advance(5000);
    const err = (await p) as PhaseError;
    expect(err.phase).toBe('backend');
    expect(err.message).toMatch(/did not finish within 5000 ms/);
    expect(calls).toEqual([
      'vip.up@2',
      'backend.start',
      'backend.stop',
      'vip.down(activation failed in backend)',
    ]);
    expect(c.metrics().lastActivation?.phases.find((x) => x.phase === 'backend')?.durationMs).toBe(5000);
  });

  it('refuses an activation with an epoch older than one already seen', async () => {
    const fence = createFence();
    fence.observe(10);
    const c = createActiveCoordinator({ steps: {}, fence });
    await expect(c.activate(9)).rejects.toBeInstanceOf(FencedError);
    expect(c.state).toBe('passive');
    await c.activate(11);
    expect(c.state).toBe('active');
    await c.close();
  });

  it('runs every reverse phase even when one fails, then reports the first failure', async () => {
    const { calls, step } = recorder();
    const backend = new MemoryBackend(calls);
    backend.stop = async () => {
      calls.push('backend.stop');
      throw new Error('will not stop');
    };
    const c = createActiveCoordinator({ steps: { vip: step('vip'), backend }, healthIntervalMs: 0 });
    await c.activate(1);
    calls.length = 0;
    const err = await c.deactivate('demoted').catch((e: unknown) => e);
    expect((err as PhaseError).phase).toBe('backend');
    expect(calls).toEqual(['backend.stop', 'vip.down(demoted)']);
    expect(c.state).toBe('passive');
    expect(c.metrics().deactivationFailures).toBe(1);
  });

  it('restarts an unhealthy backend within limits, then reports it failed (degraded) past them', async () => {
    const { clock, backend, events, c } = restartingCoordinator({
      unhealthyThreshold: 2,
      backendMs: 500,
      maxRestarts: 2,
      backoff: { initialBackoffMs: 50, maxBackoffMs: 1000, factor: 2 },
    });
    await c.activate(1);
    expect(backend.starts).toBe(1);
    await clock.advance(1000);
    expect(backend.starts).toBe(1); // healthy: nothing happens

    // The backend turns sick and stays sick after restarts.
    backend.start = async () => {
      backend.starts++;
      backend.state = BackendState.Running;
    };
    backend.healthy = false;
    for (let i = 0; i < 60 && c.state === 'active'; i++) await clock.advance(100);
    const restarts = events.filter((e) => e.type === 'backend-restart');
    expect(restarts.map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2]);
    expect(restarts.map((e) => (e as { delayMs: number }).delayMs)).toEqual([50, 100]);
    expect(restarts.every((e) => !(e as { ok: boolean }).ok)).toBe(true); // never got healthy
    const failed = events.find((e) => e.type === 'backend-failed') as { reason: string } | undefined;
    expect(failed?.reason).toMatch(/stays unhealthy \(sick\).*restarted 2 times.*step down/);
    expect(c.state).toBe('degraded');
    expect(c.metrics()).toMatchObject({ backendRestarts: 2, backendFailures: 1 });
    expect(events.filter((e) => e.type === 'backend-unhealthy').length).toBeGreaterThanOrEqual(2);
    await c.close();
  });

  it('records phases, state, restarts and failures on an injected prom-client registry', async () => {
    const registry = new Registry();
    const { clock, backend, c } = restartingCoordinator({
      name: 'orders',
      registry,
      unhealthyThreshold: 1,
      backendMs: 200,
    });
    await c.activate(1);
    backend.healthy = false;
    for (let i = 0; i < 20 && c.state === 'active'; i++) await clock.advance(100);
    expect(c.state).toBe('degraded');
    const text = await registry.metrics();
    expect(text).toMatch(
      /gc_active_phase_seconds_count\{app="orders",phase="backend",direction="activate",ok="true"\} 1/,
    );
    expect(text).toMatch(/gc_active_state\{app="orders",state="degraded"\} 1/);
    expect(text).toMatch(/gc_active_state\{app="orders",state="active"\} 0/);
    expect(text).toMatch(/gc_backend_restarts_total\{app="orders",ok="false"\} 1/);
    expect(text).toMatch(/gc_backend_failures_total\{app="orders"\} 1/);
    // A second coordinator on the same registry shares the metrics, told apart by app.
    const other = createActiveCoordinator({ name: 'billing', registry, steps: {} });
    expect(await registry.metrics()).toMatch(/gc_active_state\{app="billing",state="passive"\} 1/);
    await other.close();
    await c.close();
  });

  it('a restart that brings the backend back resets the unhealthy count', async () => {
    const { clock, calls, backend, events, c } = restartingCoordinator({
      unhealthyThreshold: 1,
      backendMs: 5000,
    });
    await c.activate(4);
    backend.healthy = false;
    const origStart = backend.start.bind(backend);
    backend.start = async () => {
      await origStart();
      backend.healthy = true; // a fresh start cures it
    };
    await clock.advance(300);
    const restart = events.find((e) => e.type === 'backend-restart') as { ok: boolean } | undefined;
    expect(restart?.ok).toBe(true);
    expect(c.state).toBe('active');
    expect(calls.slice(-2)).toEqual(['backend.stop', 'backend.start']);
    await c.close();
    expect(backend.state).toBe('stopped');
  });
});
