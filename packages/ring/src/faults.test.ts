// A member cut off from NATS (ChaosProxy black hole): it must stop serving by its renew deadline, before
// anyone takes its partitions over (after the TTL), and come back as a new instance when the link heals.
import { ChaosProxy, startServer, waitFor, type NatsServer } from '@gc/testkit';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Members } from './test/helpers.js';

let server: NatsServer;
let proxy: ChaosProxy;
let m: Members;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(async () => {
  proxy?.heal();
  await m?.close();
  await proxy?.close();
});

it('a member cut off stops serving at its renew deadline, before its partitions are taken over', async () => {
  m = new Members(server.url, 'faults', 'cut');
  proxy = await ChaosProxy.start({ target: { port: server.port } });
  const TTL = 900;
  const a = await m.start('a', { partitions: 32, ttlMs: TTL, opTimeoutMs: 400 });
  const b = await m.start('b', { partitions: 32, ttlMs: TTL, opTimeoutMs: 400 }, proxy.url());
  await m.converged();
  const mine = b.partitions();
  expect(mine.length).toBe(16);
  const cutAt = performance.now();
  proxy.blackhole();
  // b stops on its own clock: no renewal within 2/3 TTL of sending the last good one.
  await waitFor(() => !b.ownsPartition(mine[0]!), {
    timeoutMs: 2 * TTL,
    intervalMs: 5,
    message: 'b stops serving',
  });
  const stoppedAt = performance.now();
  expect(stoppedAt - cutAt).toBeLessThan(TTL);
  expect(b.partitions()).toEqual([]);
  // a takes b's partitions after the TTL (b's lease revision unchanged that long on a's clock).
  await waitFor(() => mine.every((p) => a.ownsPartition(p)), { timeoutMs: 10_000, message: 'a takes over' });
  const lost = m.events.find((e) => e.node === 'b' && e.type === 'lease-lost')!;
  const takeovers = m.events.filter(
    (e) => e.node === 'a' && e.type === 'own-start' && mine.includes(e.partition) && e.at > cutAt,
  );
  expect(takeovers).toHaveLength(16);
  expect(lost).toBeDefined();
  for (const t of takeovers) {
    expect(t.at).toBeGreaterThan(lost.at); // never two owners at once
    expect((t as { epoch: number }).epoch).toBeGreaterThan(1);
    expect((t as { takeover: boolean }).takeover).toBe(true);
  }
  expect(m.events.some((e) => e.node === 'a' && e.type === 'member-expired' && e.nodeId === 'b')).toBe(true);
  // Healed: b joins again under a new instance and gets its share back.
  const instance = m.events.filter((e) => e.node === 'b' && e.type === 'joined').length;
  proxy.heal();
  await m.converged(20_000);
  expect(m.events.filter((e) => e.node === 'b' && e.type === 'joined').length).toBeGreaterThan(instance);
  expect(b.partitions()).toHaveLength(16);
});
