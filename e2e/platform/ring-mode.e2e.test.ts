// Ring mode through the platform facade (`platform.app(name, { mode: 'ring' })`): three platforms on one
// nats-server share an app's partitions, onOwn/onRelease run per partition with a fencing epoch, key-routed
// calls from any platform (members or not) run only on the key's owner — also while a member leaves and
// another joins — and the ring shows in status, health and the audit trail.
import { describe, expect, it } from 'vitest';
import { makeTempDir, waitFor } from '@gc/testkit';
import type { ServerResponse } from 'node:http';
import { createAdminClient, createPlatform, type App, type Platform } from '@gc/platform';
import { openRingObserver } from '@gc/ring';
import { createDashboard, type ClusterSnapshot } from '@gc/cli';
import { useServer } from '../test/server.js';

const PARTITIONS = 16;
const platforms: Platform[] = [];
const nats = useServer({ connect: false, closeFirst: () => Promise.all(platforms.map((p) => p.close())) });

/** Who acts as owner of each partition right now, per node (from the hooks): the invariant's ground truth. */
const acting = new Map<number, Set<string>>();
const violations: string[] = [];

async function member(id: string): Promise<{ p: Platform; app: App }> {
  const p = await createPlatform({
    name: 'ringp',
    nodeId: id,
    nats: { servers: nats.server.url },
    dataDir: await makeTempDir(`ringp-${id}`),
    http: false,
  });
  platforms.push(p);
  const app = p.app('cache', { mode: 'ring', ring: { partitions: PARTITIONS, ttlMs: 1500, settleMs: 0 } });
  app.on('onOwn', ({ partition, epoch }) => {
    const s = acting.get(partition) ?? new Set();
    s.add(id);
    acting.set(partition, s);
    if (s.size > 1) violations.push(`partition ${partition}: ${[...s].join(',')} at epoch ${epoch}`);
  });
  app.on('onRelease', ({ partition }) => void acting.get(partition)?.delete(id));
  app.handle('put', ({ key }: { key: string }) => {
    const ring = app.ring()!;
    const part = ring.partitionOf(key);
    if (!app.owns(key) || !acting.get(part)?.has(id))
      violations.push(`${id} served ${key} (p${part}) without owning it`);
    return { node: id, partition: part, epoch: ring.epochOf(part) };
  });
  await p.start();
  return { p, app };
}

describe('ring mode in the platform', () => {
  it('partitions spread over the members; key-routed calls reach the owner through joins and leaves', async () => {
    const a = await member('a');
    const b = await member('b');
    // A platform that runs no ring app routes keys too (its RPC client uses the ring router).
    const caller = await createPlatform({
      name: 'ringp',
      nodeId: 'caller',
      nats: { servers: nats.server.url },
      http: false,
    });
    platforms.push(caller);
    await waitFor(() => a.app.partitions().length + b.app.partitions().length === PARTITIONS, {
      timeoutMs: 15_000,
      message: () =>
        `every partition served (a ${a.app.partitions().length}, b ${b.app.partitions().length})`,
    });
    expect(a.app.partitions().length).toBeGreaterThan(0);
    expect(b.app.partitions().length).toBeGreaterThan(0);

    let stop = false;
    let calls = 0;
    const errors: string[] = [];
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `user:${i % 200}`;
        try {
          const r = await caller
            .api('cache')
            .call<{ node: string; partition: number }>('put', { key }, { to: { key }, timeoutMs: 5000 });
          calls++;
          if (r.partition !== b.app.ring()!.partitionOf(key)) errors.push(`wrong partition for ${key}`);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    })();
    await waitFor(() => calls > 50, { timeoutMs: 10_000, message: 'calls flowing' });
    const c = await member('c'); // a join moves partitions to c while calls flow
    await waitFor(() => c.app.partitions().length >= 3, { timeoutMs: 15_000, message: 'c owns partitions' });
    const before = calls;
    await a.p.close(); // a polite leave hands its partitions off
    await waitFor(() => b.app.partitions().length + c.app.partitions().length === PARTITIONS, {
      timeoutMs: 15_000,
      message: 'b and c serve every partition',
    });
    await waitFor(() => calls > before + 50, { timeoutMs: 10_000, message: 'calls flow after the leave' });
    stop = true;
    await load;
    expect(errors).toEqual([]);
    expect(violations).toEqual([]);

    // Status, health and audit show the ring.
    const st = c.app.status();
    expect(st.mode).toBe('ring');
    expect(st.role).toBe('active');
    expect(st.components?.ring).toMatchObject({ joined: true, partitions: PARTITIONS });
    expect(c.p.health.report().checks.map((x) => x.name)).toContain('ring-cache');
    const types = new Set((await c.p.audit.query({ app: 'cache', type: 'ring.*' })).map((r) => r.type));
    expect(types).toContain('ring.joined');
    expect(types).toContain('ring.rebalance');

    // The dashboard's snapshot carries the partition map: every partition with its owner, counts per node.
    const dashboard = createDashboard({
      platform: 'ringp',
      nodeId: 'c',
      admin: createAdminClient(c.p.nc, 'ringp'),
      ring: (app) => openRingObserver(c.p.nc, { platform: 'ringp', app }),
    });
    try {
      const snap = await waitFor(
        async () => {
          let body = '';
          const res = {
            writeHead: () => res,
            end: (b: string) => void (body = b),
          } as unknown as ServerResponse;
          await dashboard.routes['/api/cluster']!({} as never, res);
          const s = JSON.parse(body) as ClusterSnapshot;
          return s.rings.cache?.owners.every((o) => o === 'b' || o === 'c') ? s : undefined;
        },
        { timeoutMs: 10_000, message: 'the dashboard shows the ring served by b and c' },
      );
      const ring = snap.rings.cache!;
      expect(ring.partitions).toBe(PARTITIONS);
      expect((ring.counts.b ?? 0) + (ring.counts.c ?? 0)).toBe(PARTITIONS);
      expect(ring.moving).toEqual([]);
    } finally {
      dashboard.close();
    }
  }, 90_000);
});
