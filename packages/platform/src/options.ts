// Option defaults and validation: the platform's (`createPlatform`) and each app's (`platform.app`), checked
// when they are given, so a bad config fails at declaration, naming the field by its path in the config.
import { migrationPolicySchema, schedule } from '@gc/placement';
import { resolve } from 'node:path';
import { checkConfig, ConfigError, realClock } from '@gc/core';
import { resolveElectionOptions } from '@gc/election';
import { resolveRingOptions } from '@gc/ring';
import type { NatsConnection } from '@nats-io/nats-core';
import { AppMode, type AppOptions, type PlatformOptions } from './types.js';

/** True when the platform's `nats` option is a connection (not connection options). */
export function isConnection(x: unknown): x is NatsConnection {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as NatsConnection).publish === 'function' &&
    typeof (x as NatsConnection).close === 'function'
  );
}

/** Defaults for {@link AppOptions}. */
export function defaultAppOptions(): AppOptions {
  return { mode: AppMode.ActivePassive, election: {}, kvReplicas: 1, hooks: {} };
}

/** The platform's options with their defaults, validated (the names are validated by the caller). */
export function platformOptions(
  opts: Partial<PlatformOptions> & Pick<PlatformOptions, 'name' | 'nodeId'>,
): PlatformOptions {
  const o: PlatformOptions = {
    nats: {},
    labels: {},
    http: { host: '127.0.0.1', port: 0 },
    dataDir: resolve('.gc', opts.name, opts.nodeId),
    hookTimeoutMs: 30_000,
    heartbeatMs: 1000,
    clock: realClock,
    ...opts,
  };
  checkLabels(o.labels);
  const m = o.migrations ?? {};
  if (m.cooldownMs !== undefined && !(Number.isInteger(m.cooldownMs) && m.cooldownMs >= 0))
    throw new ConfigError(
      'migrations.cooldownMs',
      `must be a whole number of ms ≥ 0, got ${String(m.cooldownMs)}`,
    );
  if (
    m.maxConcurrentMigrations !== undefined &&
    !(Number.isInteger(m.maxConcurrentMigrations) && m.maxConcurrentMigrations >= 1)
  )
    throw new ConfigError(
      'migrations.maxConcurrentMigrations',
      `must be a whole number ≥ 1, got ${String(m.maxConcurrentMigrations)}`,
    );
  if (!(o.hookTimeoutMs > 0)) throw new ConfigError('hookTimeoutMs', `must be > 0, got ${o.hookTimeoutMs}`);
  return o;
}

/** Throws unless every label value is a string. */
export function checkLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string')
      throw new ConfigError(`labels.${k}`, `label values must be strings, got ${typeof v}`);
  }
}

/** App `name`'s options with their defaults, validated against its mode and the platform's options. */
export function appOptions(
  name: string,
  partial: Partial<AppOptions>,
  platform: { name: string; nodeId: string; nats: PlatformOptions['nats'] },
): AppOptions {
  const opts = { ...defaultAppOptions(), ...partial };
  if (opts.mode !== AppMode.ActivePassive && (opts.backend || opts.vip || opts.sqlite)) {
    throw new ConfigError(
      `apps.${name}`,
      `backend, vip and sqlite need mode active-passive (the service, the address and the writable database belong to one node); got mode ${opts.mode}`,
    );
  }
  if (opts.backendRuns !== undefined && opts.backendRuns !== 'when-active' && opts.backendRuns !== 'always')
    throw new ConfigError(
      `apps.${name}.backendRuns`,
      `must be when-active or always, not ${JSON.stringify(opts.backendRuns)}`,
    );
  if (opts.backendRuns === 'always' && !opts.backend)
    throw new ConfigError(`apps.${name}.backendRuns`, 'always needs a backend to run (apps.<name>.backend)');
  if (opts.sqlite?.worker && isConnection(platform.nats)) {
    throw new ConfigError(
      `apps.${name}.sqlite.worker`,
      'the capture worker opens its own NATS connection: create the platform with connection options (nats: { servers, ... }), not with a connection',
    );
  }
  if (opts.recoveryBudgetMs !== undefined) checkRecoveryBudget(name, opts);
  if (opts.ring !== undefined && opts.mode !== AppMode.Ring)
    throw new ConfigError(`apps.${name}.ring`, `ring options need mode ring; got mode ${opts.mode}`);
  if (opts.mode === AppMode.Ring) checkRingOptions(name, opts, platform.name, platform.nodeId);
  if (opts.placement !== undefined || opts.budget !== undefined || opts.migrate !== undefined)
    checkPlacement(name, opts);
  if (!Object.values(AppMode).includes(opts.mode)) {
    throw new ConfigError(
      `apps.${name}.mode`,
      `unknown mode ${JSON.stringify(opts.mode)}; use one of ${Object.values(AppMode).join(', ')}`,
    );
  }
  return opts;
}

/** Placement's spec and budget, checked by `@gc/placement` itself (selectors, counts, names). */
function checkPlacement(name: string, opts: AppOptions): void {
  if (opts.placement === undefined)
    throw new ConfigError(
      `apps.${name}.${opts.budget !== undefined ? 'budget' : 'migrate'}`,
      `${opts.budget !== undefined ? 'a disruption budget' : 'a migration policy'} needs placement (apps.<name>.placement)`,
    );
  if (opts.migrate !== undefined) checkConfig(migrationPolicySchema, opts.migrate, `apps.${name}.migrate`);
  if (opts.mode === AppMode.Ring)
    throw new ConfigError(
      `apps.${name}.placement`,
      'placement is not available for ring apps: a ring spreads its partitions over every node that declares the app (declare it only on the nodes that should run it)',
    );
  // Throws ConfigError / SelectorSyntaxError / InvalidNameError with the path apps.<name>.placement.….
  schedule({
    nodes: [],
    apps: [
      {
        app: name,
        mode: opts.mode,
        placement: opts.placement,
        ...(opts.budget ? { budget: opts.budget } : {}),
      },
    ],
  });
}

/**
 * The worst-case time from a leader's crash to a standby's takeover that the election timings allow:
 * `ttlMs + pollIntervalMs` (the standby sees the last renew at most a poll late, and waits a full TTL on its
 * own clock), or with fast failover `fastFailoverIntervalMs × (fastFailoverProbes + 1) + pollIntervalMs`
 * for a leader whose process is gone. Plus one KV round trip (not counted).
 */
export function worstCaseDetectionMs(e: AppOptions['election']): { ms: number; arithmetic: string } {
  const r = resolveElectionOptions({ ...e, bucket: 'x', nodeId: 'x' });
  if (r.fastFailover) {
    const ms = r.fastFailoverIntervalMs * (r.fastFailoverProbes + 1) + r.pollIntervalMs;
    return {
      ms,
      arithmetic: `fastFailoverIntervalMs ${r.fastFailoverIntervalMs} × (fastFailoverProbes ${r.fastFailoverProbes} + 1) + pollIntervalMs ${r.pollIntervalMs} = ${ms} ms`,
    };
  }
  const ms = r.ttlMs + r.pollIntervalMs;
  return { ms, arithmetic: `ttlMs ${r.ttlMs} + pollIntervalMs ${r.pollIntervalMs} = ${ms} ms` };
}

/** Validates a ring app's options now (at declaration), naming the field by its path in the app's config. */
function checkRingOptions(name: string, o: AppOptions, platform: string, nodeId: string): void {
  try {
    resolveRingOptions({ ...o.ring, platform, app: name, nodeId });
  } catch (err) {
    if (err instanceof ConfigError && err.path.startsWith('ring'))
      throw new ConfigError(`apps.${name}.${err.path}`, err.message.slice(err.path.length + 2), {
        cause: err,
      });
    throw err;
  }
}

function checkRecoveryBudget(name: string, o: AppOptions): void {
  const b = o.recoveryBudgetMs!;
  if (!Number.isSafeInteger(b) || b <= 0)
    throw new ConfigError(
      `apps.${name}.recoveryBudgetMs`,
      `must be a positive integer (ms), got ${String(b)}`,
    );
  if (o.mode !== AppMode.ActivePassive)
    throw new ConfigError(`apps.${name}.recoveryBudgetMs`, 'a recovery budget needs mode active-passive');
  const d = worstCaseDetectionMs(o.election);
  if (b < d.ms)
    throw new ConfigError(
      `apps.${name}.recoveryBudgetMs`,
      `${b} ms is shorter than the worst-case detection of a crashed leader alone: ${d.arithmetic} (before the new leader promotes its data and starts the backend); raise the budget, lower election.ttlMs or enable election.fastFailover`,
    );
}
