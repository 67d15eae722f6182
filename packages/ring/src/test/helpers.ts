import { connect } from '@gc/core';
import { startServer, waitFor, type NatsServer } from '@gc/testkit';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { quotas } from '../assign.js';
import { createRing } from '../ring.js';
import type { Ring, RingEvent, RingInit } from '../types.js';

/** Test-only: ring members on their own connections, closed after each test. */
export class Members {
  readonly url: string;
  readonly platform: string;
  readonly app: string;
  readonly rings = new Map<string, Ring>();
  readonly conns = new Map<string, NatsConnection>();
  readonly events: Array<RingEvent & { node: string; at: number }> = [];
  readonly #extra: NatsConnection[] = [];

  constructor(url: string, platform: string, app: string) {
    this.url = url;
    this.platform = platform;
    this.app = app;
  }

  async conn(name: string): Promise<NatsConnection> {
    const nc = await connect({ servers: this.url, name, reconnectTimeWaitMs: 50 });
    this.#extra.push(nc);
    return nc;
  }

  async start(nodeId: string, opts: Partial<RingInit> = {}, servers = this.url): Promise<Ring> {
    const nc = await connect({ servers, name: nodeId, reconnectTimeWaitMs: 50 });
    this.conns.set(nodeId, nc);
    const ring = await createRing(nc, {
      platform: this.platform,
      app: this.app,
      nodeId,
      ttlMs: 900,
      settleMs: 0,
      onEvent: (e) => this.events.push({ ...e, node: nodeId, at: performance.now() }),
      ...opts,
    });
    this.rings.set(nodeId, ring);
    return ring;
  }

  /** Closes politely. */
  async stop(nodeId: string): Promise<void> {
    await this.rings.get(nodeId)?.close();
    this.rings.delete(nodeId);
    await this.conns.get(nodeId)?.close();
    this.conns.delete(nodeId);
  }

  /** Crashes a member: its connection goes away without a goodbye (its timers die with it). */
  async crash(nodeId: string): Promise<void> {
    const ring = this.rings.get(nodeId)!;
    this.rings.delete(nodeId);
    const nc = this.conns.get(nodeId)!;
    this.conns.delete(nodeId);
    await nc.close();
    // Its timers stop when its lease deadline passes; close it in the background so nothing lingers.
    void ring.close().catch(() => undefined);
  }

  /**
   * Waits until every partition is served by exactly one member, every member's view agrees, every member
   * sees exactly the running members, and (unless `balanced` is false) each serves its weighted quota.
   */
  async converged(timeoutMs = 15_000, balanced = true): Promise<Map<number, string>> {
    return waitFor(
      () => {
        const rings = [...this.rings.values()];
        if (rings.length === 0) return undefined;
        const P = rings[0]!.partitionCount;
        const ids = [...this.rings.keys()].sort().join(',');
        for (const r of rings) {
          if (
            r
              .members()
              .map((x) => x.nodeId)
              .join(',') !== ids
          )
            return undefined;
        }
        if (balanced) {
          const q = quotas(
            P,
            rings[0]!.members().map((x) => ({ id: x.nodeId, weight: x.weight })),
          );
          for (const r of rings) if (r.partitions().length !== q.get(r.nodeId)) return undefined;
        }
        const owners = new Map<number, string>();
        for (const r of rings) {
          for (const p of r.partitions()) {
            if (owners.has(p)) return undefined;
            owners.set(p, r.nodeId);
          }
        }
        if (owners.size !== P) return undefined;
        for (const r of rings) {
          const s = r.snapshot();
          if (s.moving.length > 0) return undefined;
          for (let p = 0; p < P; p++) if (s.owners[p] !== owners.get(p)) return undefined;
        }
        return owners;
      },
      { timeoutMs, intervalMs: 10, message: 'ring convergence' },
    );
  }

  async close(): Promise<void> {
    for (const id of [...this.rings.keys()]) await this.stop(id).catch(() => undefined);
    for (const nc of this.#extra.splice(0)) await nc.close().catch(() => undefined);
  }
}

/** What {@link useRingServer} gives; readable inside tests. */
export interface RingServer {
  /** The file's nats-server. */
  readonly server: NatsServer;
  /** A new group of ring members of `app` on the server, closed after the test. */
  members(app: string): Members;
}

/**
 * One nats-server for the calling test file (started in `beforeAll`, closed in `afterAll`), and
 * {@link Members} groups of `platform` on it, each closed after the test that made it.
 */
export function useRingServer(platform: string): RingServer {
  let server: NatsServer | undefined;
  const groups: Members[] = [];
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(async () => {
    for (const m of groups.splice(0)) await m.close();
  });
  const started = (): NatsServer => {
    if (!server) throw new Error('useRingServer: the server is not started yet (use it inside a test)');
    return server;
  };
  return {
    get server() {
      return started();
    },
    members(app) {
      const m = new Members(started().url, platform, app);
      groups.push(m);
      return m;
    },
  };
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function rejection(p: Promise<unknown> | (() => unknown)): Promise<Error & { code?: string }> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
