// The placement gate's hooks with its dependencies faked (a pool app, a fake clock): when onMigrationStart
// is asked and asked again, what a refusal, a throw and a forced drain do, how a migration ends, and
// onPlacementInvalid once per reason.
import { FakeClock, silentLogger } from '@gc/core';
import { describe, expect, it } from 'vitest';
import type { AppDeps } from './app-deps.js';
import type { AppOptions } from './app-options.js';
import { MIGRATION_RETRY_MS, PlacementGate } from './app-placement.js';
import type { AppTransitions } from './app-transitions.js';
import type { MigrationCompleteContext, MigrationContext, PlacementInvalidContext } from './hook-types.js';
import { HookRunner } from './hooks.js';
import type { PlacementView } from './placement/agent.js';
import { AppRole } from './types.js';

function poolGate() {
  const clock = new FakeClock();
  const audits: Array<{ type: string; data: Record<string, unknown> }> = [];
  const deactivations: string[] = [];
  const t = {
    role: AppRole.Active as AppRole,
    epoch: 0,
    activation: undefined,
    enqueue: (fn: () => Promise<void>) => fn(),
    deactivate: (reason: string) => {
      deactivations.push(reason);
      t.role = AppRole.Passive;
      return Promise.resolve();
    },
    activate: () => {
      t.role = AppRole.Active;
      return Promise.resolve();
    },
  };
  const d = {
    nodeId: 'n1',
    clock,
    logger: silentLogger,
    audit: (type: string, data: Record<string, unknown>) => void audits.push({ type, data }),
  } as unknown as AppDeps;
  const hooks = new HookRunner({
    app: 'web',
    timeoutMs: 1000,
    clock,
    logger: silentLogger,
    onFailure: () => {},
  });
  const gate = new PlacementGate({
    name: 'web',
    o: { mode: 'pool', placement: {} } as AppOptions,
    d,
    t: t as unknown as AppTransitions,
    election: () => undefined,
    db: () => undefined,
    hooks,
    running: () => true,
    stepDown: () => Promise.resolve(),
  });
  const placed = gate.placed();
  const starts: MigrationContext[] = [];
  const completes: MigrationCompleteContext[] = [];
  const show = (view: Partial<PlacementView> & { generation: number }) =>
    placed.applyPlacement({
      placed: false,
      handoverReady: false,
      reason: `not placed here (generation ${view.generation})`,
      ...view,
    });
  const recordMigrations = (answer: () => { refuse: string } | undefined) => {
    hooks.add('onMigrationStart', (ctx) => {
      starts.push(ctx);
      return answer();
    });
    hooks.add('onMigrationComplete', (ctx) => void completes.push(ctx));
  };
  return { clock, t, audits, deactivations, hooks, placed, show, starts, completes, recordMigrations };
}

describe('PlacementGate hooks', () => {
  it('without migration hooks, an instance no longer placed stops at once', () => {
    const g = poolGate();
    g.show({ generation: 2 });
    expect(g.deactivations).toHaveLength(1);
    expect(g.placed.refusedHere()).toBeUndefined();
  });

  it('asks onMigrationStart once per migration, again after the retry while it refuses; placed again abandons it', async () => {
    const g = poolGate();
    g.recordMigrations(() => ({ refuse: 'busy' }));
    g.show({ generation: 2 });
    await g.clock.advance(0);
    expect(g.starts).toHaveLength(1);
    expect(g.starts[0]).toMatchObject({
      app: 'web',
      nodeId: 'n1',
      reason: 'placement changed',
      forced: false,
    });
    expect(g.starts[0]!.to).toBeUndefined();
    expect(g.placed.refusedHere()).toBe('busy');
    expect(g.deactivations).toEqual([]);
    // Gate ticks, and a decision that changes nothing for the migration: not asked again.
    for (let i = 0; i < 4; i++) {
      await g.clock.advance(1000);
      g.show({ generation: 3 });
    }
    expect(g.starts).toHaveLength(1);
    await g.clock.advance(MIGRATION_RETRY_MS);
    g.show({ generation: 3 });
    await g.clock.advance(0);
    expect(g.starts).toHaveLength(2);
    expect(g.audits.filter((a) => a.type === 'placement.migration_refused')).toHaveLength(1);
    // Placed here again: the migration is given up, its signal aborted, the refusal withdrawn.
    g.show({ generation: 4, placed: true, reason: 'placed here (generation 4)' });
    expect(g.completes).toHaveLength(0); // hooks run asynchronously
    await g.clock.advance(0);
    expect(g.completes).toEqual([
      expect.objectContaining({ from: 'n1', result: 'abandoned', detail: 'the app is placed here again' }),
    ]);
    expect(g.starts[0]!.signal.aborted).toBe(true);
    expect(g.placed.refusedHere()).toBeUndefined();
    expect(g.deactivations).toEqual([]);
  });

  it('a throw refuses with its message; a forced drain asks again at once and overrides the refusal', async () => {
    const g = poolGate();
    g.recordMigrations(() => {
      throw new Error('flushing');
    });
    g.show({ generation: 2, drainingHere: true });
    await g.clock.advance(0);
    expect(g.placed.refusedHere()).toMatch(/flushing/);
    expect(g.starts[0]).toMatchObject({ reason: 'drain', forced: false });
    g.show({ generation: 3, drainingHere: true, forced: true });
    await g.clock.advance(0);
    expect(g.starts).toHaveLength(2);
    expect(g.starts[1]).toMatchObject({ reason: 'drain', forced: true });
    expect(g.deactivations).toHaveLength(1);
    expect(g.placed.refusedHere()).toBeUndefined();
    await g.clock.advance(0);
    expect(g.completes).toEqual([
      expect.objectContaining({ from: 'n1', reason: 'drain', result: 'completed' }),
    ]);
    // The forced drain did not wait for the hook's answer: the override is recorded when it comes.
    expect(g.audits.map((a) => a.type)).toEqual([
      'placement.migration_refused',
      'placement.migration_complete',
      'placement.migration_overridden',
    ]);
  });

  it('a forced drain leaves at once, without waiting for a hook that never answers', async () => {
    const g = poolGate();
    g.hooks.add('onMigrationStart', () => new Promise<undefined>(() => undefined)); // hangs
    g.show({ generation: 2, drainingHere: true });
    await g.clock.advance(10);
    expect(g.deactivations).toEqual([]); // not forced yet: waits for the hook
    g.show({ generation: 3, drainingHere: true, forced: true });
    expect(g.deactivations).toHaveLength(1);
  });

  it('a migration the hook lets go ends completed once the instance stopped', async () => {
    const g = poolGate();
    g.recordMigrations(() => undefined);
    g.show({ generation: 2 });
    expect(g.deactivations).toEqual([]); // not before the hook answered
    await g.clock.advance(250);
    expect(g.deactivations).toHaveLength(1);
    expect(g.completes).toEqual([
      expect.objectContaining({ result: 'completed', reason: 'placement changed', tookMs: 0 }),
    ]);
    expect(g.starts).toHaveLength(1);
  });

  it('onPlacementInvalid is called once per reason, not when placeable again', async () => {
    const g = poolGate();
    const calls: PlacementInvalidContext[] = [];
    g.hooks.add('onPlacementInvalid', (ctx) => void calls.push(ctx));
    const invalid = (message: string) => ({
      generation: 2,
      unsatisfiable: true,
      invalid: { constraint: 'onLabel', message },
    });
    g.show(invalid('no node has gpu=yes'));
    g.show(invalid('no node has gpu=yes'));
    g.show({ generation: 3, placed: true });
    g.show(invalid('no node has gpu=yes'));
    g.show(invalid('no node has gpu=nvidia'));
    await g.clock.advance(0);
    expect(calls.map((c) => c.reason)).toEqual([
      'no node has gpu=yes',
      'no node has gpu=yes',
      'no node has gpu=nvidia',
    ]);
    expect(calls[0]).toEqual({
      app: 'web',
      nodeId: 'n1',
      constraint: 'onLabel',
      reason: 'no node has gpu=yes',
    });
  });
});
