import { resourceNames, validateNodeId, validateToken } from '@gc/core';

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

/** The RPC subjects of an app; validates platform and app names. */
export function rpcSubjects(platform: string, app: string): RpcSubjects {
  const names = resourceNames(platform).app(app);
  const prefix = `${names.platform}.${names.app}.rpc.`;
  return {
    platform: names.platform,
    app: names.app,
    any: (method) => names.rpc(method),
    leader: (method) => `${names.rpc(method)}.leader`,
    node: (method, nodeId) => `${names.rpc(method)}.node.${validateNodeId(nodeId)}`,
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
