import {
  checkConfig,
  checkInteger,
  ConfigError,
  configFields,
  realClock,
  silentLogger,
  validateNodeId,
} from '@gc/core';
import { ringNames } from './records.js';
import { ringConfigSchema } from './schema.js';
import type { RingInit, RingOptions, RingRouterOptions } from './types.js';

// The bounds live with the schema; re-exported here, where they have always been.
export { MIN_TTL_MS, MAX_WEIGHT } from './schema.js';

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

/**
 * Merges `init` over {@link defaultRingOptions} and validates (the configurable fields with
 * {@link ringConfigSchema}); throws `ConfigError` (path `ring.<option>`, the message naming the value and
 * what is allowed) or `InvalidNameError` for bad names. `renewIntervalMs` and `renewDeadlineMs` default to
 * a third and two thirds of the given `ttlMs`.
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
  // Types and per-field ranges of the configurable fields, then the rules the schema does not carry.
  checkConfig(ringConfigSchema, configFields(ringConfigSchema, o), 'ring');
  checkInteger('ring.renewIntervalMs', o.renewIntervalMs, 1);
  checkInteger('ring.renewDeadlineMs', o.renewDeadlineMs, 1);
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
  checkInteger('ring.maxParallelWrites', o.maxParallelWrites, 1, 1024);
  checkInteger('ring.opTimeoutMs', o.opTimeoutMs, 1);
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
