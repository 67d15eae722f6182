import {
  checkConfig,
  checkInteger,
  ConfigError,
  configFields,
  realClock,
  silentLogger,
  validateNodeId,
  validateToken,
} from '@gc/core';
import { electionConfigSchema } from './schema.js';
import type { ElectionOptions } from './types.js';

/** Highest priority (the default): contends for a free lease without delay. */
export const MAX_PRIORITY = 10;

/** Smallest TTL accepted, in ms: below it a KV round trip under load eats the whole budget. */
export const MIN_TTL_MS = 100;

/**
 * Smallest `ttlMs / renewDeadlineMs` accepted. It is the clock-rate difference between two nodes that the
 * election tolerates without overlap; below 1.1 a 10 % rate difference (or a GC pause) breaks safety.
 */
export const MIN_SAFETY_RATIO = 1.1;

/**
 * Defaults of {@link ElectionOptions} for a given TTL (the timings derived from it follow the TTL).
 * `bucket` and `nodeId` have no default and are empty here.
 */
export function defaultElectionOptions(ttlMs = 3000): ElectionOptions {
  const renewIntervalMs = Math.round(ttlMs / 3);
  return {
    bucket: '',
    key: 'leader',
    nodeId: '',
    ttlMs,
    renewIntervalMs,
    renewDeadlineMs: Math.round((2 * ttlMs) / 3),
    pollIntervalMs: Math.min(250, Math.max(10, Math.round(ttlMs / 12))),
    cooldownMs: renewIntervalMs,
    priority: MAX_PRIORITY,
    priorityStepMs: 50,
    observeOnly: false,
    wallClockEpochFloor: true,
    fastFailover: false,
    fastFailoverIntervalMs: 100,
    fastFailoverProbes: 2,
    replicas: 1,
    opTimeoutMs: Math.max(1, Math.round(renewIntervalMs / 2)),
    clock: realClock,
    logger: silentLogger,
  };
}

/**
 * Merges `opts` over {@link defaultElectionOptions} (derived timings follow a given `ttlMs`) and validates
 * the result. Throws `ConfigError` whose `path` is `election.<option>` and whose message names the rule.
 *
 * The configurable fields are checked with {@link electionConfigSchema} (types and ranges; the message names
 * the field, its value and what is allowed). Rules: `renewIntervalMs < renewDeadlineMs < ttlMs`;
 * `ttlMs / renewDeadlineMs ≥ 1.1` (clock-rate tolerance); `ttlMs ≥ 100`; `priority ≤ 10`; `replicas` 1, 3
 * or 5; `pollIntervalMs ≤ ttlMs`; `opTimeoutMs ≤ renewDeadlineMs`; names are tokens.
 */
export function resolveElectionOptions(
  opts: Partial<ElectionOptions> & Pick<ElectionOptions, 'bucket' | 'nodeId'>,
): ElectionOptions {
  const ttlMs = opts.ttlMs ?? 3000;
  const base = defaultElectionOptions(typeof ttlMs === 'number' && ttlMs > 0 ? ttlMs : 3000);
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: ElectionOptions = { ...base, ...given };
  if (opts.renewIntervalMs !== undefined && opts.cooldownMs === undefined) o.cooldownMs = o.renewIntervalMs;
  if (opts.renewIntervalMs !== undefined && opts.opTimeoutMs === undefined)
    o.opTimeoutMs = Math.max(1, Math.round(o.renewIntervalMs / 2));
  const p = (k: string) => `election.${k}`;
  try {
    validateToken('bucket', o.bucket);
    validateToken('key', o.key);
    validateNodeId(o.nodeId);
  } catch (err) {
    throw new ConfigError(p('bucket/key/nodeId'), (err as Error).message, { cause: err });
  }
  // Types and per-field ranges of the configurable fields, then the rules the schema does not carry.
  checkConfig(electionConfigSchema, configFields(electionConfigSchema, o), 'election');
  checkInteger(p('ttlMs'), o.ttlMs, MIN_TTL_MS);
  checkInteger(p('priority'), o.priority, 0, MAX_PRIORITY);
  checkInteger(p('priorityStepMs'), o.priorityStepMs, 0);
  checkInteger(p('opTimeoutMs'), o.opTimeoutMs, 1);
  if (![1, 3, 5].includes(o.replicas)) {
    throw new ConfigError(p('replicas'), `must be 1, 3 or 5, got ${JSON.stringify(o.replicas)}`);
  }
  if (!(o.renewIntervalMs < o.renewDeadlineMs)) {
    throw new ConfigError(
      p('renewIntervalMs'),
      `rule renewIntervalMs < renewDeadlineMs broken (${o.renewIntervalMs} ≥ ${o.renewDeadlineMs}): the leader would demote before its next renew`,
    );
  }
  if (!(o.renewDeadlineMs < o.ttlMs)) {
    throw new ConfigError(
      p('renewDeadlineMs'),
      `rule renewDeadlineMs < ttlMs broken (${o.renewDeadlineMs} ≥ ${o.ttlMs}): a contender could take over while the old leader still acts (two leaders)`,
    );
  }
  if (o.ttlMs / o.renewDeadlineMs < MIN_SAFETY_RATIO) {
    throw new ConfigError(
      p('renewDeadlineMs'),
      `rule ttlMs / renewDeadlineMs ≥ ${MIN_SAFETY_RATIO} broken (${(o.ttlMs / o.renewDeadlineMs).toFixed(3)}): it is the clock-rate difference tolerated between nodes; lower renewDeadlineMs`,
    );
  }
  if (o.pollIntervalMs > o.ttlMs) {
    throw new ConfigError(
      p('pollIntervalMs'),
      `rule pollIntervalMs ≤ ttlMs broken (${o.pollIntervalMs} > ${o.ttlMs}): failover would take longer than needed`,
    );
  }
  if (o.opTimeoutMs > o.renewDeadlineMs) {
    throw new ConfigError(
      p('opTimeoutMs'),
      `rule opTimeoutMs ≤ renewDeadlineMs broken (${o.opTimeoutMs} > ${o.renewDeadlineMs})`,
    );
  }
  if (typeof o.clock?.now !== 'function') throw new ConfigError(p('clock'), 'must be a Clock');
  return o;
}
