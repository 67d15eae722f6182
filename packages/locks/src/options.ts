// Options of @gc/locks: defaults, limits and validation.
import { checkInteger, ConfigError, realClock, silentLogger, validateToken } from '@gc/core';
import type { LocksOptions } from './types.js';

/** Smallest lease TTL accepted, in ms. */
export const MIN_TTL_MS = 100;
/** Largest number of semaphore permits. */
export const MAX_PERMITS = 1000;

/** Defaults of {@link LocksOptions}; `bucket` and `owner` have none and are empty here. */
export function defaultLocksOptions(): LocksOptions {
  return {
    bucket: '',
    owner: '',
    ttlMs: 10_000,
    waitMs: 30_000,
    autoRenew: true,
    pollIntervalMs: 1000,
    opTimeoutMs: 5000,
    replicas: 1,
    clock: realClock,
    logger: silentLogger,
  };
}

/** Merges `opts` over {@link defaultLocksOptions} and validates; throws `ConfigError` (path `locks.<option>`). */
export function resolveLocksOptions(
  opts: Partial<LocksOptions> & Pick<LocksOptions, 'bucket' | 'owner'>,
): LocksOptions {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: LocksOptions = { ...defaultLocksOptions(), ...given };
  try {
    validateToken('lock bucket', o.bucket);
  } catch (err) {
    throw new ConfigError('locks.bucket', (err as Error).message, { cause: err });
  }
  try {
    validateToken('lock owner', o.owner);
  } catch (err) {
    throw new ConfigError('locks.owner', (err as Error).message, { cause: err });
  }
  checkInteger('locks.ttlMs', o.ttlMs, MIN_TTL_MS);
  checkInteger('locks.waitMs', o.waitMs, 0);
  checkInteger('locks.pollIntervalMs', o.pollIntervalMs, 1);
  checkInteger('locks.opTimeoutMs', o.opTimeoutMs, 1);
  if (![1, 3, 5].includes(o.replicas)) {
    throw new ConfigError('locks.replicas', `must be 1, 3 or 5, got ${JSON.stringify(o.replicas)}`);
  }
  if (typeof o.clock?.now !== 'function') throw new ConfigError('locks.clock', 'must be a Clock');
  return o;
}
