// Where a call goes: the target of each attempt (any instance by least outstanding calls, the leader, a
// key's owner, one node) and the lookup of an app's healthy instances by their presence answers.
import type { Logger } from '@gc/core';
import { NoRespondersError, RequestError, type NatsConnection } from '@nats-io/nats-core';
import { BadPayloadError, NoInstanceError } from './errors.js';
import { rendezvous } from './policy.js';
import { rpcSubjects, type RpcSubjects } from './subjects.js';
import type { CallTarget, RpcClientOptions } from './types.js';

/** The subject an attempt is sent to, the target's name (for its circuit breaker), and its node if known. */
export interface Target {
  subject: string;
  name: string;
  node?: string;
}

/** The app a call goes to: its name and subjects. */
interface CalledApp {
  readonly app: string;
  readonly subjects: RpcSubjects;
}

/** Picks the targets of a client's calls; holds the instance lists and in-flight counts it picks by. */
export class Targets {
  readonly platform: string;
  readonly #nc: NatsConnection;
  readonly #o: RpcClientOptions;
  readonly #log: Logger;
  readonly #instances = new Map<string, { nodes: string[]; atMs: number; pending?: Promise<string[]> }>();
  /** Calls of this client in flight per app and node, for `to: 'any'` (least outstanding). */
  readonly #outstanding = new Map<string, Map<string, number>>();

  constructor(nc: NatsConnection, o: RpcClientOptions, platform: string, log: Logger) {
    this.#nc = nc;
    this.#o = o;
    this.platform = platform;
    this.#log = log;
  }

  /** Where the next attempt of a call to `to` goes; `previous` is the failed attempt of a key-routed call. */
  target(
    api: CalledApp,
    method: string,
    to: CallTarget,
    previous?: { node: string; error: Error },
  ): Target | Promise<Target> {
    if (to === 'any') {
      // Least outstanding calls over the app's healthy instances (two random choices, the less busy one),
      // when they are known; otherwise — and while they are looked up — the queue group (a random one).
      const node = this.#leastOutstanding(api.app, previous?.node);
      return node === undefined
        ? { subject: api.subjects.any(method), name: 'any' }
        : { subject: api.subjects.node(method, node), name: 'any', node };
    }
    if (to === 'leader') return { subject: api.subjects.leader(method), name: 'leader' };
    if (typeof to === 'object' && to !== null && 'node' in to) {
      return { subject: api.subjects.node(method, to.node), name: `node:${to.node}`, node: to.node };
    }
    if (typeof to === 'object' && to !== null && 'key' in to) {
      if (typeof to.key !== 'string' || to.key.length === 0) {
        throw new BadPayloadError(api.app, method, 'routing key must be a non-empty string');
      }
      return this.#keyTarget(api, method, to.key, previous);
    }
    throw new TypeError(
      `unknown call target ${JSON.stringify(to)}: use 'any', 'leader', { key } or { node }`,
    );
  }

  async #keyTarget(
    api: CalledApp,
    method: string,
    key: string,
    previous?: { node: string; error: Error },
  ): Promise<Target> {
    let node = this.#o.route ? await this.#o.route(api.app, key, previous) : undefined;
    if (node === undefined) node = rendezvous(await this.instances(api.app), key);
    if (node === undefined) throw new NoInstanceError(api.app, method, `key:${key}`);
    return { subject: api.subjects.node(method, node), name: `node:${node}`, node };
  }

  /**
   * For `to: 'any'`: of two instances drawn at random from the known healthy ones (not `avoid`, the node a
   * failed attempt went to), the one with fewer calls of this client in flight. Never waits: with no fresh
   * list it starts a lookup in the background and returns undefined (the caller uses the queue group).
   */
  #leastOutstanding(app: string, avoid: string | undefined): string | undefined {
    const c = this.#instances.get(app);
    if (!c || c.pending || performance.now() - c.atMs >= this.#o.discoveryTtlMs) {
      if (!c?.pending)
        void this.instances(app).catch((err: unknown) =>
          this.#log.debug('instance lookup failed; any-calls use the queue group', { app, err }),
        );
      if (!c || c.pending) return undefined;
    }
    // A single instance leaves nothing to balance: the queue group reaches it (and any instance that joined
    // since the lookup) without the node subject's Gc-Rpc-Balanced header, whose building and parsing on
    // every call had gc at 0.9 of the raw baseline's throughput in `pnpm bench rpc` (1.08 without). An
    // unhealthy sole instance leaves the queue group, so its calls are refused unrun all the same.
    if (avoid === undefined && c.nodes.length === 1) return undefined;
    const nodes = avoid === undefined ? c.nodes : c.nodes.filter((n) => n !== avoid);
    if (nodes.length === 0) return undefined;
    if (nodes.length === 1) return nodes[0];
    const load = this.#outstanding.get(app);
    const i = Math.floor(Math.random() * nodes.length);
    let j = Math.floor(Math.random() * (nodes.length - 1));
    if (j >= i) j++;
    const a = nodes[i]!;
    const b = nodes[j]!;
    return (load?.get(b) ?? 0) < (load?.get(a) ?? 0) ? b : a;
  }

  /** Counts a call to `node` of `app` in (+1) or out (-1) of flight. */
  track(app: string, node: string, delta: 1 | -1): void {
    let m = this.#outstanding.get(app);
    if (!m) this.#outstanding.set(app, (m = new Map<string, number>()));
    const n = (m.get(node) ?? 0) + delta;
    if (n > 0) m.set(node, n);
    else m.delete(node);
  }

  /** Node ids of the app's healthy instances (presence answers, cached for `discoveryTtlMs`). */
  async instances(app: string): Promise<string[]> {
    const now = performance.now();
    let c = this.#instances.get(app);
    if (c && !c.pending && now - c.atMs < this.#o.discoveryTtlMs) return c.nodes;
    if (c?.pending) return c.pending;
    const pending = this.lookup(app, this.#o.discoveryWaitMs);
    c = { nodes: c?.nodes ?? [], atMs: c?.atMs ?? 0, pending };
    this.#instances.set(app, c);
    try {
      const nodes = await pending;
      this.#instances.set(app, { nodes, atMs: performance.now() });
      return nodes;
    } catch (err) {
      this.#instances.delete(app);
      throw err;
    }
  }

  /** Node ids of the app's healthy instances: the presence answers collected for `waitMs`, not cached. */
  async lookup(app: string, waitMs: number): Promise<string[]> {
    const subject = rpcSubjects(this.platform, app).presence;
    const nodes = new Set<string>();
    try {
      const it = await this.#nc.requestMany(subject, undefined, { strategy: 'timer', maxWait: waitMs });
      for await (const m of it) {
        if (m.data.length) nodes.add(m.string());
      }
    } catch (err) {
      // Nobody answering is an app with no healthy instance, not a failure.
      if (!(err instanceof NoRespondersError) && !(err instanceof RequestError)) throw err;
    }
    return [...nodes].sort();
  }

  /** Drops the app's instance list (a node it named is gone): the next call looks the instances up again. */
  forget(app: string): void {
    this.#instances.delete(app);
  }
}
