import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, validateAppName, validateNodeId, validatePlatformName, type LogLevel } from '@gc/core';
import { backendConfigSchema } from '@gc/backends';
import { electionConfigSchema, resolveElectionOptions } from '@gc/election';
import { worstCaseDetectionMs } from '@gc/platform';
import { migrationPolicySchema, placementSpecSchema } from '@gc/placement';
import { ringConfigSchema } from '@gc/ring';
import { vipConfigSchema } from '@gc/vip';
import { replicatedDatabaseConfigSchema } from '@gc/wal';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const name = (validate: (v: string) => string) =>
  z.string().superRefine((v, ctx) => {
    try {
      validate(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const positiveMs = z.number().int().positive();

/** An optional block of settings that are each optional; unknown keys are refused (as everywhere). */
const optionalSection = <S extends z.ZodRawShape>(shape: S) => z.strictObject(shape).partial().optional();

const budgetValue = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(\.\d+)?%$/)]);
/** A disruption budget (`@gc/placement`'s `DisruptionBudget`): a count or a percentage, one of the two. */
const budgetSchema = z
  .object({ minAvailable: budgetValue.optional(), maxUnavailable: budgetValue.optional() })
  .strict()
  .refine((b) => b.minAvailable === undefined || b.maxUnavailable === undefined, {
    message: 'set minAvailable or maxUnavailable, not both',
  });

const appSchema = z
  .object({
    mode: z.enum(['active-passive', 'pool', 'ring']).default('active-passive'),
    ring: ringConfigSchema.optional(),
    election: electionConfigSchema.default({}),
    kvReplicas: z.number().int().min(1).max(5).default(1),
    hookTimeoutMs: positiveMs.optional(),
    recoveryBudgetMs: positiveMs.optional(),
    backend: backendConfigSchema.optional(),
    /** `always`: the backend runs on standbys too and a failover only moves the VIP (see AppOptions.backendRuns). */
    backendRuns: z.enum(['when-active', 'always']).optional(),
    vip: vipConfigSchema.optional(),
    sqlite: replicatedDatabaseConfigSchema.optional(),
    /** Where the app may run (`@gc/placement`); absent: on every node that declares it. */
    placement: placementSpecSchema.optional(),
    /** Disruption budget for drains (with placement only). */
    budget: budgetSchema.optional(),
    /** When automatic migrations may happen: cooldownMs, maintenance windows (with placement only). */
    migrate: migrationPolicySchema.optional(),
    phaseTimeouts: optionalSection({ promoteMs: positiveMs, vipMs: positiveMs, backendMs: positiveMs }),
  })
  .strict()
  .superRefine((app, ctx) => {
    if (app.backendRuns === 'always' && !app.backend)
      ctx.addIssue({ code: 'custom', path: ['backendRuns'], message: 'always needs a backend to run' });
    if (app.budget && !app.placement)
      ctx.addIssue({ code: 'custom', path: ['budget'], message: 'a disruption budget needs placement' });
    if (app.migrate && !app.placement)
      ctx.addIssue({ code: 'custom', path: ['migrate'], message: 'a migration policy needs placement' });
    if (app.placement && app.mode === 'ring')
      ctx.addIssue({
        code: 'custom',
        path: ['placement'],
        message: 'placement is not available for ring apps (declare them on the nodes that should run them)',
      });
    if (app.ring && app.mode !== 'ring')
      ctx.addIssue({
        code: 'custom',
        path: ['ring'],
        message: `ring options need mode ring; got mode ${app.mode}`,
      });
    if (app.mode !== 'active-passive') {
      for (const k of ['backend', 'backendRuns', 'vip', 'sqlite', 'recoveryBudgetMs'] as const) {
        if (app[k])
          ctx.addIssue({
            code: 'custom',
            path: [k],
            message: `${k} needs mode active-passive (the service, the address and the writable database belong to one node)`,
          });
      }
    }
  });

/** The schema of `gc.yaml`. Unknown keys are refused everywhere. */
export const configSchema = z
  .object({
    platform: name(validatePlatformName),
    node: z
      .object({
        id: name(validateNodeId),
        labels: z.record(z.string(), z.string()).default({}),
      })
      .strict(),
    /** Limits of automatic migrations while this node is the placement scheduler. */
    migrations: optionalSection({
      cooldownMs: z.number().int().nonnegative(),
      maxConcurrentMigrations: z.number().int().min(1),
    }),
    nats: z
      .object({
        servers: z.union([z.string(), z.array(z.string()).min(1)]).default('nats://127.0.0.1:4222'),
        credentials: optionalSection({
          credsFile: z.string(),
          token: z.string(),
          user: z.string(),
          pass: z.string(),
          nkeySeed: z.string(),
        }),
        tls: optionalSection({
          caFile: z.string(),
          certFile: z.string(),
          keyFile: z.string(),
          handshakeFirst: z.boolean(),
        }),
      })
      .strict()
      .default({ servers: 'nats://127.0.0.1:4222' }),
    // `http: false` is shorthand for `http: { enabled: false }`.
    http: z
      .preprocess(
        (v) => (v === false ? { enabled: false } : v),
        z
          .object({
            enabled: z.boolean().default(true),
            host: z.string().default('127.0.0.1'),
            port: z.number().int().min(0).max(65535).default(8080),
          })
          .strict(),
      )
      .default({ enabled: true, host: '127.0.0.1', port: 8080 }),
    dataDir: z.string().optional(),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
        format: z.enum(['json', 'pretty']).optional(),
      })
      .strict()
      .default({ level: 'info' }),
    apps: z.record(name(validateAppName), appSchema).default({}),
  })
  .strict();

/** A validated `gc.yaml`. */
export type GcConfig = z.infer<typeof configSchema>;
/** One app of a {@link GcConfig}. */
export type AppConfig = z.infer<typeof appSchema>;

/** Environment variables that override file values. */
export const ENV_OVERRIDES = {
  GC_PLATFORM: 'platform',
  GC_NODE_ID: 'node.id',
  GC_NATS_URL: 'nats.servers (comma-separated)',
  GC_HTTP_PORT: 'http.port',
  GC_DATA_DIR: 'dataDir',
  GC_LOG_LEVEL: 'log.level',
  LOG_LEVEL: 'log.level (when GC_LOG_LEVEL is not set)',
} as const;

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  const obj = (k: string): Record<string, unknown> => {
    const v = out[k];
    if (v === undefined || v === null) return (out[k] = {});
    return v as Record<string, unknown>;
  };
  if (env.GC_PLATFORM) out.platform = env.GC_PLATFORM;
  if (env.GC_NODE_ID) obj('node').id = env.GC_NODE_ID;
  if (env.GC_NATS_URL)
    obj('nats').servers = env.GC_NATS_URL.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (env.GC_HTTP_PORT) {
    const port = Number(env.GC_HTTP_PORT);
    if (!Number.isInteger(port))
      throw new ConfigError('GC_HTTP_PORT', `must be an integer, got ${JSON.stringify(env.GC_HTTP_PORT)}`);
    const http = out.http === false ? { enabled: false } : ((out.http ?? {}) as Record<string, unknown>);
    out.http = { ...http, port };
  }
  if (env.GC_DATA_DIR) out.dataDir = env.GC_DATA_DIR;
  const level = env.GC_LOG_LEVEL || env.LOG_LEVEL;
  if (level) obj('log').level = level.toLowerCase();
  return out;
}

/**
 * Validates a raw config object (environment overrides applied first) and checks app timings with the
 * election's own safety rules. Every error names the path of the bad field.
 */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source = 'config'): GcConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      '',
      `${source} must be a mapping of keys to values (platform, node, nats, apps, ...)`,
    );
  }
  const result = configSchema.safeParse(applyEnv(raw as Record<string, unknown>, env));
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      // A bad record key (an app name) carries the name validator's message in its nested issues.
      const nested = (issue as { issues?: Array<{ message: string }> }).issues?.[0]?.message;
      const path = issue.path.map(String).join('.') || '(top level)';
      return `${path}: ${nested ?? issue.message}`;
    });
    throw new ConfigError('', `${source} is invalid:\n  ${lines.join('\n  ')}`);
  }
  const config = result.data;
  for (const [app, spec] of Object.entries(config.apps)) {
    if (spec.mode !== 'active-passive') continue;
    try {
      resolveElectionOptions({ bucket: 'check', key: 'check', nodeId: config.node.id, ...spec.election });
    } catch (err) {
      throw new ConfigError(`apps.${app}.election`, (err as Error).message, { cause: err });
    }
    if (spec.recoveryBudgetMs !== undefined) {
      const d = worstCaseDetectionMs(spec.election);
      if (spec.recoveryBudgetMs < d.ms)
        throw new ConfigError(
          `apps.${app}.recoveryBudgetMs`,
          `${spec.recoveryBudgetMs} ms is shorter than the worst-case detection of a crashed leader alone: ${d.arithmetic}; raise the budget, lower election.ttlMs or enable election.fastFailover`,
        );
    }
  }
  return config;
}

/** Reads and validates a YAML (or JSON) config file. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): GcConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      '',
      `cannot read config file ${file}: ${(err as Error).message} (create one with "gc init")`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError('', `${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(raw, env, file);
}

/** The log level of a config. */
export function logLevel(config: GcConfig): LogLevel {
  return config.log.level;
}

/** A commented starter config, written by `gc init`. */
export function starterConfig(opts: { platform: string; nodeId: string; natsUrl: string }): string {
  return `# gc node configuration. Validate with: gc run --config gc.yaml --check
# Environment variables override these values: ${Object.keys(ENV_OVERRIDES).join(', ')}.

# Platform name: every node of a platform uses the same one. Lowercase letters, digits, "-".
platform: ${opts.platform}

node:
  # This node's id: unique in the platform. Letters, digits, "-" and "_".
  id: ${opts.nodeId}
  # Labels for placement and discovery.
  labels:
    zone: local

nats:
  # One or more servers of the same NATS cluster (nats-server >= 2.10 with JetStream).
  servers:
    - ${opts.natsUrl}
  # credentials: { credsFile: /etc/gc/node.creds }   # or token, or user + pass, or nkeySeed
  # tls: { caFile: /etc/gc/ca.pem }

# /health, /ready, /status, /metrics (and the dashboard). "http: false" turns them off.
http:
  host: 127.0.0.1
  port: 8080

# Where this node keeps durable state (highest fencing epochs seen). Default .gc/<platform>/<node>.
# dataDir: /var/lib/gc

log:
  level: info   # trace, debug, info, warn, error, silent

apps:
  # An app with one active node (the elected leader) and standbys.
  orders:
    mode: active-passive
    election:
      ttlMs: 3000          # a crashed leader is replaced within about ttlMs + pollIntervalMs
      renewIntervalMs: 1000
      renewDeadlineMs: 2000 # the leader stops acting if it cannot renew for this long (< ttlMs)
    # Where it may run (absent: on every node that declares it), and when it may be moved automatically:
    # placement: { onLabel: zone=local }
    # migrate:
    #   cooldownMs: 300000
    #   windows: [{ cron: "0 2 * * 6", durationMs: 14400000, timezone: Europe/Berlin }]
  # An app active on every node.
  workers:
    mode: pool
`;
}
