// Options of @gc/membership: defaults, limits and validation (labels, apps).
import {
  ConfigError,
  realClock,
  resourceNames,
  silentLogger,
  validateAppName,
  validateNodeId,
  validateToken,
} from '@gc/core';
import type { Labels, MembershipOptions } from './types.js';

/** Smallest heartbeat interval accepted, in ms. */
export const MIN_HEARTBEAT_MS = 50;
/** Longest label value accepted, in characters. */
export const MAX_LABEL_VALUE = 256;

/** Defaults of {@link MembershipOptions}; `platform` and `nodeId` have none and are empty here. */
export function defaultMembershipOptions(heartbeatMs = 1000): MembershipOptions {
  return {
    platform: '',
    nodeId: '',
    labels: {},
    apps: [],
    version: '0.0.0',
    heartbeatMs,
    failAfterMs: 3 * heartbeatMs,
    serverTtlMs: Math.max(6 * heartbeatMs, 5000),
    reconnectGraceMs: 2500,
    observeOnly: false,
    replicas: 1,
    opTimeoutMs: Math.max(1000, heartbeatMs),
    clock: realClock,
    logger: silentLogger,
  };
}

/** Validates labels; throws `InvalidNameError` for a bad key and `ConfigError` for a bad value. */
export function validateLabels(labels: unknown, path = 'membership.labels'): Labels {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new ConfigError(path, `must be an object of string values, got ${JSON.stringify(labels)}`);
  }
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) {
    validateToken('label', k);
    if (typeof v !== 'string' || v.length > MAX_LABEL_VALUE) {
      throw new ConfigError(`${path}.${k}`, `must be a string of at most ${MAX_LABEL_VALUE} characters`);
    }
    out[k] = v;
  }
  return out;
}

export function validateApps(apps: unknown, path = 'membership.apps'): string[] {
  if (!Array.isArray(apps)) throw new ConfigError(path, `must be an array of app names`);
  return [...new Set(apps.map((a) => validateAppName(a)))].sort();
}

/** Merges `opts` over the defaults (derived timings follow a given `heartbeatMs`) and validates. */
export function resolveMembershipOptions(
  opts: Partial<MembershipOptions> & Pick<MembershipOptions, 'platform' | 'nodeId'>,
): MembershipOptions {
  const hb = opts.heartbeatMs;
  const base = defaultMembershipOptions(typeof hb === 'number' && hb >= MIN_HEARTBEAT_MS ? hb : 1000);
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: MembershipOptions = { ...base, ...given };
  resourceNames(o.platform);
  validateNodeId(o.nodeId);
  o.labels = validateLabels(o.labels);
  o.apps = validateApps(o.apps);
  const int = (k: keyof MembershipOptions, min: number) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new ConfigError(`membership.${k}`, `must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  };
  int('heartbeatMs', MIN_HEARTBEAT_MS);
  int('failAfterMs', 1);
  if (opts.serverTtlMs === undefined) o.serverTtlMs = Math.max(2 * o.failAfterMs, 5000);
  int('serverTtlMs', 1000);
  int('opTimeoutMs', 1);
  int('reconnectGraceMs', 0);
  if (o.failAfterMs < 2 * o.heartbeatMs) {
    throw new ConfigError(
      'membership.failAfterMs',
      `rule failAfterMs ≥ 2 × heartbeatMs broken (${o.failAfterMs} < ${2 * o.heartbeatMs}): one late heartbeat would report a live node as gone`,
    );
  }
  if (o.serverTtlMs < o.failAfterMs) {
    throw new ConfigError(
      'membership.serverTtlMs',
      `rule serverTtlMs ≥ failAfterMs broken (${o.serverTtlMs} < ${o.failAfterMs}): the server would drop live records before observers would`,
    );
  }
  if (![1, 3, 5].includes(o.replicas)) {
    throw new ConfigError('membership.replicas', `must be 1, 3 or 5, got ${JSON.stringify(o.replicas)}`);
  }
  if (typeof o.version !== 'string') throw new ConfigError('membership.version', 'must be a string');
  if (typeof o.clock?.now !== 'function') throw new ConfigError('membership.clock', 'must be a Clock');
  return o;
}
