import { InvalidNameError } from './errors.js';

/**
 * Platform and app names: lowercase letters, digits and hyphens, starting with a letter, at most
 * 32 characters. No underscore, because `_` joins names in resource names (`{platform}_{app}`), and
 * no dot, because names are also subject tokens (`{platform}.{app}.rpc.*`).
 */
const RESOURCE_NAME = /^[a-z][a-z0-9-]*$/;
const MAX_RESOURCE_NAME = 32;

/**
 * App names that would collide with platform-wide resources (`{platform}_membership` is both the
 * membership bucket and the KV of an app called `membership`).
 */
export const RESERVED_APP_NAMES: ReadonlySet<string> = new Set([
  'platform',
  'membership',
  'services',
  'audit',
  'events',
  'election',
  'placement',
  'leaf',
  'gc',
]);

/**
 * Node ids, lock names and other identifiers used inside keys and as single subject tokens:
 * letters, digits, `-` and `_`, at most 64 characters.
 */
const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const MAX_TOKEN_NAME = 64;

function check(kind: string, value: unknown, re: RegExp, max: number, rule: string): string {
  if (typeof value !== 'string')
    throw new InvalidNameError(kind, String(value), `must be a string, got ${typeof value}`);
  if (value.length === 0) throw new InvalidNameError(kind, value, 'must not be empty');
  if (value.length > max)
    throw new InvalidNameError(kind, value, `must be at most ${max} characters (has ${value.length})`);
  if (!re.test(value)) throw new InvalidNameError(kind, value, rule);
  return value;
}

/** Checks a platform or app name (`kind`) against {@link RESOURCE_NAME}; a final "-" is refused too. */
function checkResourceName(kind: 'platform' | 'app', name: unknown): string {
  const v = check(
    kind,
    name,
    RESOURCE_NAME,
    MAX_RESOURCE_NAME,
    'use lowercase letters, digits and "-", starting with a letter (no "_" or ".": they separate names in NATS resources)',
  );
  if (v.endsWith('-')) throw new InvalidNameError(kind, v, 'must not end with "-"');
  return v;
}

/** Validates a platform name and returns it; throws {@link InvalidNameError} with the rule it breaks. */
export function validatePlatformName(name: unknown): string {
  return checkResourceName('platform', name);
}

/** Validates an app name and returns it; throws {@link InvalidNameError} with the rule it breaks. */
export function validateAppName(name: unknown): string {
  const v = checkResourceName('app', name);
  if (RESERVED_APP_NAMES.has(v)) {
    throw new InvalidNameError(
      'app',
      v,
      `is reserved for platform-wide resources (${[...RESERVED_APP_NAMES].join(', ')}); pick another name`,
    );
  }
  return v;
}

/**
 * Validates an identifier used as a KV key or a single subject token (node ids, lock names, RPC
 * method names); `kind` names it in the error.
 */
export function validateToken(kind: string, name: unknown): string {
  return check(
    kind,
    name,
    TOKEN_NAME,
    MAX_TOKEN_NAME,
    'use letters, digits, "-" and "_", starting with a letter or digit',
  );
}

/** Validates a node id (see {@link validateToken}). */
export function validateNodeId(id: unknown): string {
  return validateToken('node id', id);
}

/** Names of one app's NATS resources. A public contract: see the README's naming table. */
export interface AppResourceNames {
  readonly platform: string;
  readonly app: string;
  /** App KV bucket: `{platform}_{app}`. */
  readonly kv: string;
  /** App lock bucket: `{platform}_{app}_locks`. */
  readonly locks: string;
  /** Election bucket: `{platform}_{app}_election`. */
  readonly election: string;
  /** WAL stream: `{platform}_{app}_wal`. */
  readonly walStream: string;
  /** Snapshot object store: `{platform}_{app}_snapshots`. */
  readonly snapshots: string;
  /** RPC subject for a method: `{platform}.{app}.rpc.{method}`. */
  rpc(method: string): string;
  /** App-internal event subject: `{platform}.{app}.events.{topic}`. */
  events(topic: string): string;
}

/** Names of the platform-wide NATS resources and a factory for per-app names. */
export interface PlatformResourceNames {
  readonly platform: string;
  /** Membership bucket: `{platform}_membership`. */
  readonly membership: string;
  /** Service registry bucket: `{platform}_services`. */
  readonly services: string;
  /** Platform-wide lock bucket: `{platform}_platform_locks`. */
  readonly platformLocks: string;
  /** Audit stream: `{platform}_audit`. */
  readonly auditStream: string;
  /** Placement bucket (node declarations, cordons and drains, the scheduler's decision): `{platform}_placement`. */
  readonly placement: string;
  /** The scheduler's election bucket: `{platform}_placement_election`. */
  readonly placementElection: string;
  /** Audit subject for an event type: `{platform}._.audit.{type}`. */
  audit(type: string): string;
  /** Platform-wide event subject: `{platform}.events.{topic}`. */
  events(topic: string): string;
  /** Per-app names; validates `app`. */
  app(app: string): AppResourceNames;
}

/**
 * The NATS resource names of a platform. Validates the platform name (and app names passed to
 * `app()`), so a bad name fails here with a clear message instead of deep inside NATS.
 *
 * @example
 * const n = resourceNames('prod');
 * n.app('orders').walStream; // 'prod_orders_wal'
 */
export function resourceNames(platform: string): PlatformResourceNames {
  const p = validatePlatformName(platform);
  return {
    platform: p,
    membership: `${p}_membership`,
    services: `${p}_services`,
    platformLocks: `${p}_platform_locks`,
    auditStream: `${p}_audit`,
    placement: `${p}_placement`,
    placementElection: `${p}_placement_election`,
    audit: (type) => `${p}._.audit.${subjectTail('audit type', type)}`,
    events: (topic) => `${p}.events.${subjectTail('event topic', topic)}`,
    app(app: string): AppResourceNames {
      const a = validateAppName(app);
      return {
        platform: p,
        app: a,
        kv: `${p}_${a}`,
        locks: `${p}_${a}_locks`,
        election: `${p}_${a}_election`,
        walStream: `${p}_${a}_wal`,
        snapshots: `${p}_${a}_snapshots`,
        rpc: (method) => `${p}.${a}.rpc.${validateToken('method', method)}`,
        events: (topic) => `${p}.${a}.events.${subjectTail('event topic', topic)}`,
      };
    },
  };
}

/**
 * Validates a dotted subject tail (`order.created`): tokens of letters, digits, `-`, `_`,
 * separated by dots; the wildcards `*` and `>` are allowed as whole tokens (`>` last) for subscriptions.
 */
export function subjectTail(kind: string, tail: string): string {
  if (typeof tail !== 'string' || tail.length === 0)
    throw new InvalidNameError(kind, String(tail), 'must not be empty');
  const tokens = tail.split('.');
  tokens.forEach((t, i) => {
    if (t === '>' && i === tokens.length - 1) return;
    if (t === '*') return;
    if (!TOKEN_NAME.test(t)) {
      throw new InvalidNameError(
        kind,
        tail,
        `token ${JSON.stringify(t)} must use letters, digits, "-" and "_" (wildcards "*" and a final ">" are allowed)`,
      );
    }
  });
  return tail;
}
