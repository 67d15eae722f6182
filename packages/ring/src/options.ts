import { ConfigError, realClock, silentLogger, validateNodeId } from '@gc/core';
import { MAX_PARTITIONS, MIN_PARTITIONS } from './hash.js';
import { ringNames } from './records.js';
import type { RingInit, RingOptions, RingRouterOptions } from './types.js';

/** Smallest member lease TTL accepted, in ms. */
export const MIN_TTL_MS = 300;
/** Largest member weight. */
export const MAX_WEIGHT = 1000;

/** Defaults of {@link RingOptions} (the required names are empty; `partitions` undefined = stored or 256). */
export function defaultRingOptions(): RingOptions {
  return {
    platform: '',
    app: '',
    nodeId: '',
    partitions: undefined,
    weight: 1,
    ttlMs: 3000,
    renewIntervalMs: 1000,
    renewDeadlineMs: 2000,
    ownTimeoutMs: 30_000,
    releaseTimeoutMs: 30_000,
    leaveTimeoutMs: 30_000,
    maxConcurrentMoves: 256,
    settleMs: 200,
    stuckMoveMs: 30_000,
    holdTimeoutMs: 10_000,
    maxHeldCalls: 10_000,
    coordinator: true,
    maxParallelWrites: 64,
    opTimeoutMs: 5000,
    replicas: 1,
    clock: realClock,
    logger: silentLogger,
  };
}

function int(path: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(
      path,
      `must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/**
 * Merges `init` over {@link defaultRingOptions} and validates; throws `ConfigError` (path `ring.<option>`)
 * or `InvalidNameError` for bad names. `renewIntervalMs` and `renewDeadlineMs` default to a third and two
 * thirds of the given `ttlMs`.
 */
export function resolveRingOptions(init: RingInit): RingOptions {
  const given = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) as RingInit;
  const d = defaultRingOptions();
  const ttlMs = given.ttlMs ?? d.ttlMs;
  const o: RingOptions = {
    ...d,
    renewIntervalMs: Math.max(1, Math.round(ttlMs / 3)),
    renewDeadlineMs: Math.max(1, Math.round((2 * ttlMs) / 3)),
    ...given,
  };
  ringNames(o.platform, o.app); // validates platform and app names
  validateNodeId(o.nodeId);
  if (o.partitions !== undefined) int('ring.partitions', o.partitions, MIN_PARTITIONS, MAX_PARTITIONS);
  if (typeof o.weight !== 'number' || !(o.weight > 0) || o.weight > MAX_WEIGHT) {
    throw new ConfigError(
      'ring.weight',
      `must be a number in (0, ${MAX_WEIGHT}], got ${JSON.stringify(o.weight)}`,
    );
  }
  int('ring.ttlMs', o.ttlMs, MIN_TTL_MS);
  int('ring.renewIntervalMs', o.renewIntervalMs, 1);
  int('ring.renewDeadlineMs', o.renewDeadlineMs, 1);
  if (o.renewDeadlineMs >= o.ttlMs) {
    throw new ConfigError(
      'ring.renewDeadlineMs',
      `must be below ttlMs (${o.ttlMs}), got ${o.renewDeadlineMs}: a member must stop serving before others may take its partitions`,
    );
  }
  if (o.renewIntervalMs >= o.renewDeadlineMs) {
    throw new ConfigError(
      'ring.renewIntervalMs',
      `must be below renewDeadlineMs (${o.renewDeadlineMs}), got ${o.renewIntervalMs}: at least one renewal must fit before the deadline`,
    );
  }
  for (const k of [
    'ownTimeoutMs',
    'releaseTimeoutMs',
    'leaveTimeoutMs',
    'stuckMoveMs',
    'holdTimeoutMs',
  ] as const)
    int(`ring.${k}`, o[k], 1);
  int('ring.settleMs', o.settleMs, 0);
  int('ring.maxConcurrentMoves', o.maxConcurrentMoves, 1);
  int('ring.maxHeldCalls', o.maxHeldCalls, 0);
  int('ring.maxParallelWrites', o.maxParallelWrites, 1, 1024);
  int('ring.opTimeoutMs', o.opTimeoutMs, 1);
  if (![1, 3, 5].includes(o.replicas)) {
    throw new ConfigError('ring.replicas', `must be 1, 3 or 5, got ${JSON.stringify(o.replicas)}`);
  }
  if (typeof o.clock?.now !== 'function') throw new ConfigError('ring.clock', 'must be a Clock');
  for (const k of ['onOwn', 'onRelease', 'onEvent'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'function')
      throw new ConfigError(`ring.${k}`, 'must be a function');
  }
  return o;
}

/** Defaults of {@link RingRouterOptions}. */
export function defaultRingRouterOptions(): RingRouterOptions {
  return {
    platform: '',
    holdTimeoutMs: 10_000,
    maxHeldCalls: 10_000,
    negativeCacheMs: 5000,
    opTimeoutMs: 5000,
    clock: realClock,
    logger: silentLogger,
  };
}
