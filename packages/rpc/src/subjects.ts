import { resourceNames, validateAppName, validateNodeId, validateToken } from '@gc/core';

/**
 * Subject layout of one app's RPC (a public contract; see the README):
 *
 * | target | subject | subscription of an instance |
 * |---|---|---|
 * | any instance | `{platform}.{app}.rpc.{method}` | `{platform}.{app}.rpc.*`, queue group `rpc` |
 * | the leader | `{platform}.{app}.rpc.{method}.leader` | `{platform}.{app}.rpc.*.leader`, only while leader |
 * | one node | `{platform}.{app}.rpc.{method}.node.{nodeId}` | `{platform}.{app}.rpc.*.node.{nodeId}` |
 * | presence | `{platform}.{app}.rpc._.presence` | every healthy instance answers with its node id |
 *
 * Method names are single tokens (letters, digits, `-`, `_`, starting with a letter or digit), so
 * `_` can never be a method and the presence subject cannot collide with one.
 */
export interface RpcSubjects {
  readonly platform: string;
  readonly app: string;
  /** `{platform}.{app}.rpc.{method}` — queue-balanced over healthy instances. */
  any(method: string): string;
  /** `{platform}.{app}.rpc.{method}.leader` — served only by the current leader. */
  leader(method: string): string;
  /** `{platform}.{app}.rpc.{method}.node.{nodeId}` — one instance. */
  node(method: string, nodeId: string): string;
  /** `{platform}.{app}.rpc._.presence` — healthy instances answer with their node id. */
  readonly presence: string;
  /** Wildcard subscriptions of an instance. */
  readonly subscriptions: {
    readonly any: string;
    readonly leader: string;
    node(nodeId: string): string;
  };
  /** Queue group of the `any` subscription. */
  readonly queue: string;
  /** Length of `{platform}.{app}.rpc.`, where the method token starts. */
  readonly prefixLength: number;
}

/**
 * The app name of the platform's own RPC scope: `{platform}.gc.rpc.*`, served by every node of a platform
 * (its control API: `gc status`, `gc node`). `gc` is a reserved app name, so no app's calls can reach it.
 */
export const PLATFORM_RPC_APP = 'gc';

/** Validates an app name for RPC: any app's, or {@link PLATFORM_RPC_APP}. */
export function validateRpcApp(app: unknown): string {
  return app === PLATFORM_RPC_APP ? app : validateAppName(app);
}

/** The RPC subjects of an app (or of {@link PLATFORM_RPC_APP}); validates platform and app names. */
export function rpcSubjects(platform: string, app: string): RpcSubjects {
  const p = resourceNames(platform).platform;
  const a = validateRpcApp(app);
  const prefix = `${p}.${a}.rpc.`;
  const any = (method: string) => `${prefix}${validateToken('method', method)}`;
  return {
    platform: p,
    app: a,
    any,
    leader: (method) => `${any(method)}.leader`,
    node: (method, nodeId) => `${any(method)}.node.${validateNodeId(nodeId)}`,
    presence: `${prefix}_.presence`,
    subscriptions: {
      any: `${prefix}*`,
      leader: `${prefix}*.leader`,
      node: (nodeId) => `${prefix}*.node.${validateNodeId(nodeId)}`,
    },
    queue: 'rpc',
    prefixLength: prefix.length,
  };
}

/** Validates a method name (a single subject token). */
export function validateMethod(method: unknown): string {
  return validateToken('method', method);
}

/** The method token of an RPC subject (the token right after `{platform}.{app}.rpc.`). */
export function methodOf(subject: string, prefixLength: number): string {
  const end = subject.indexOf('.', prefixLength);
  return end < 0 ? subject.slice(prefixLength) : subject.slice(prefixLength, end);
}
