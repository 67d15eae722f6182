// Shared by the ring e2e files: member processes, an observer of the ring bucket, a key-routed client and
// the history checks (one owner at a time per partition, epochs increasing, calls executed by owners only).
import { connect, silentLogger } from '@gc/core';
import { createRingRouter, openRingObserver, quotas, type RingObserver, type RingRouter } from '@gc/ring';
import { createRpcClient, type RpcClient } from '@gc/rpc';
import { spawnNode, waitFor, type ChildNode } from '@gc/testkit';
import type { NatsConnection } from '@nats-io/nats-core';

const fixture = new URL('./fixtures/node.ts', import.meta.url).pathname;
export const now = () => Number(process.hrtime.bigint()) / 1e6;

/** A message a member process sent. */
export interface NodeMsg {
  type: string;
  node: string;
  at: number;
  p?: number;
  epoch?: number;
  id?: number;
  ok?: boolean;
  why?: string;
  event?: Record<string, unknown>;
}

/** One call the client made. */
export interface CallRecord {
  id: number;
  key: string;
  sentAt: number;
  doneAt?: number;
  reply?: { node: string; p: number; epoch: number };
  error?: string;
}

export class RingScenario {
  readonly platform: string;
  readonly app: string;
  readonly url: string;
  readonly env: Record<string, string>;
  readonly children = new Map<string, ChildNode>();
  readonly retired: NodeMsg[] = [];
  readonly kills: Array<{ node: string; at: number }> = [];
  observer: RingObserver | undefined;
  nc: NatsConnection | undefined;

  constructor(url: string, platform: string, app: string, env: Record<string, string> = {}) {
    this.url = url;
    this.platform = platform;
    this.app = app;
    this.env = env;
  }

  async start(node: string): Promise<ChildNode> {
    const child = spawnNode(fixture, {
      env: { NATS_URL: this.url, PLATFORM: this.platform, APP: this.app, NODE_ID: node, ...this.env },
      label: node,
    });
    this.children.set(node, child);
    await child.waitForMessage<NodeMsg>((m) => m.type === 'ready', 30_000, `${node} ready`);
    if (!this.observer) {
      this.nc = await connect({ servers: this.url, name: 'observer' });
      this.observer = await openRingObserver(this.nc, { platform: this.platform, app: this.app });
    }
    return child;
  }

  /** Polite leave (SIGTERM: the member hands its partitions off, then exits). */
  async stop(node: string): Promise<void> {
    const child = this.children.get(node)!;
    await child.stop(15_000);
    this.#retire(node);
  }

  async kill(node: string): Promise<void> {
    const child = this.children.get(node)!;
    const at = now();
    await child.kill('SIGKILL');
    this.kills.push({ node, at });
    this.#retire(node);
  }

  #retire(node: string): void {
    this.retired.push(...this.children.get(node)!.messages<NodeMsg>());
    this.children.delete(node);
  }

  alive(): string[] {
    return [...this.children.keys()].sort();
  }

  messages(): NodeMsg[] {
    const all = [...this.retired];
    for (const c of this.children.values()) all.push(...c.messages<NodeMsg>());
    return all;
  }

  /**
   * Waits until the ring has converged on the live processes: members = them, every partition `owned` by one
   * of them, nothing moving, each serving its quota. Returns the owner per partition.
   */
  async converged(timeoutMs = 30_000): Promise<string[]> {
    const want = this.alive().join(',');
    return waitFor(
      () => {
        const s = this.observer!.snapshot();
        if (s.members.map((x) => x.nodeId).join(',') !== want) return undefined;
        if (s.moving.length > 0 || s.owners.some((o) => o === null)) return undefined;
        const q = quotas(
          s.partitions,
          s.members.map((x) => ({ id: x.nodeId, weight: x.weight })),
        );
        for (const [n, c] of q) if ((s.counts[n] ?? 0) !== c) return undefined;
        return s.owners as string[];
      },
      {
        timeoutMs,
        intervalMs: 20,
        message: () => `ring convergence on ${want}: ${JSON.stringify(this.observer!.snapshot().counts)}`,
      },
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.children.keys()].map((n) => this.children.get(n)!.stop(5000)));
    await this.observer?.close();
    await this.nc?.close();
  }
}

/** A client process-in-the-test that keeps sending key-routed calls. */
export class Traffic {
  readonly calls: CallRecord[] = [];
  /** The last refusal seen per key (diagnostics). */
  static readonly previous = new Map<string, string>();
  readonly #rpc: RpcClient;
  readonly #router: RingRouter;
  readonly #nc: NatsConnection;
  #running = false;
  #loops: Promise<void>[] = [];
  #id = 0;

  private constructor(nc: NatsConnection, router: RingRouter, rpc: RpcClient) {
    this.#nc = nc;
    this.#router = router;
    this.#rpc = rpc;
  }

  static async open(url: string, platform: string): Promise<Traffic> {
    const nc = await connect({ servers: url, name: 'traffic' });
    const router = await createRingRouter(nc, { platform, holdTimeoutMs: 20_000 });
    const rpc = createRpcClient(nc, {
      platform,
      route: (app, key, previous) => {
        if (previous) Traffic.previous.set(key, `${previous.node}: ${previous.error.message}`);
        return router.route(app, key, previous);
      },
      timeoutMs: 3000,
      retry: { retries: 12, initialDelayMs: 20, maxDelayMs: 500 },
      logger: silentLogger,
    });
    return new Traffic(nc, router, rpc);
  }

  /** One call of `key`; idempotent, so a call whose node was killed mid-way is retried on the next owner. */
  async call(app: string, key: string): Promise<CallRecord> {
    const rec: CallRecord = { id: ++this.#id, key, sentAt: now() };
    this.calls.push(rec);
    try {
      rec.reply = await this.#rpc
        .api(app)
        .call<{ node: string; p: number; epoch: number }>(
          'work',
          { key, id: rec.id },
          { to: { key }, idempotent: true },
        );
    } catch (err) {
      rec.error = `${(err as { code?: string }).code ?? ''} ${(err as Error).message} [last refusal: ${Traffic.previous.get(key)}]`;
    }
    rec.doneAt = now();
    return rec;
  }

  start(app: string, loops: number, keys: number, pauseMs: number): void {
    this.#running = true;
    for (let l = 0; l < loops; l++) {
      this.#loops.push(
        (async () => {
          while (this.#running) {
            await this.call(app, `k${Math.floor(Math.random() * keys)}`);
            await new Promise((r) => setTimeout(r, pauseMs));
          }
        })(),
      );
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#rpc.close();
    await this.#router.close();
    await this.#nc.close();
  }
}

/** Ownership intervals per partition from the members' start/end messages (kills end every open one). */
export function intervals(
  msgs: NodeMsg[],
  kills: Array<{ node: string; at: number }>,
): Map<number, Array<{ node: string; epoch: number; start: number; end: number; why: string }>> {
  const out = new Map<
    number,
    Array<{ node: string; epoch: number; start: number; end: number; why: string }>
  >();
  const open = new Map<
    string,
    { node: string; epoch: number; start: number; end: number; why: string; p: number }
  >();
  for (const m of [...msgs].sort((a, b) => a.at - b.at)) {
    if (m.type === 'start') {
      const iv = { node: m.node, epoch: m.epoch!, start: m.at, end: Infinity, why: 'open', p: m.p! };
      open.set(`${m.node}/${m.p}`, iv);
      const list = out.get(m.p!) ?? [];
      list.push(iv);
      out.set(m.p!, list);
    } else if (m.type === 'end') {
      const iv = open.get(`${m.node}/${m.p}`);
      if (iv && iv.epoch === m.epoch) {
        iv.end = m.at;
        iv.why = m.why ?? '';
        open.delete(`${m.node}/${m.p}`);
      }
    }
  }
  for (const k of kills) {
    for (const [key, iv] of open) {
      if (iv.node === k.node && iv.start <= k.at) {
        iv.end = k.at;
        iv.why = 'killed';
        open.delete(key);
      }
    }
  }
  return out;
}

/** Problems in the ownership history: overlapping owners and epochs that do not increase. */
export function checkOwnership(byP: ReturnType<typeof intervals>): string[] {
  const problems: string[] = [];
  for (const [p, list] of byP) {
    const sorted = [...list].sort((a, b) => a.start - b.start);
    let maxEnd = -Infinity;
    let prev: (typeof sorted)[number] | undefined;
    for (const iv of sorted) {
      if (prev && iv.start < maxEnd)
        problems.push(
          `partition ${p}: ${iv.node}@${iv.epoch} started ${(maxEnd - iv.start).toFixed(1)} ms before ${prev.node}@${prev.epoch} stopped (${prev.why})`,
        );
      if (prev && iv.epoch <= prev.epoch)
        problems.push(
          `partition ${p}: epoch ${iv.epoch} of ${iv.node} after epoch ${prev.epoch} of ${prev.node}`,
        );
      maxEnd = Math.max(maxEnd, iv.end);
      prev = iv;
    }
  }
  return problems;
}

/** Problems with executions: by a non-owner (self-reported), or outside the executing node's interval. */
export function checkExecutions(
  msgs: NodeMsg[],
  byP: ReturnType<typeof intervals>,
  calls: CallRecord[],
): string[] {
  const problems: string[] = [];
  for (const m of msgs) {
    if (m.type !== 'exec') continue;
    if (!m.ok) problems.push(`call ${m.id} ran on ${m.node} for partition ${m.p} without owning it`);
    const iv = byP.get(m.p!)?.find((x) => x.node === m.node && x.epoch === m.epoch);
    if (!iv || m.at < iv.start || m.at > iv.end)
      problems.push(
        `call ${m.id} ran on ${m.node} (partition ${m.p}, epoch ${m.epoch}) outside its ownership`,
      );
  }
  for (const c of calls) {
    if (!c.reply) continue;
    const iv = byP.get(c.reply.p)?.find((x) => x.node === c.reply!.node && x.epoch === c.reply!.epoch);
    if (!iv)
      problems.push(
        `call ${c.id} answered by ${c.reply.node}@${c.reply.epoch}, never an owner of ${c.reply.p}`,
      );
  }
  return problems;
}
