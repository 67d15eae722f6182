import { startServer, waitFor, type NatsServer } from '@gc/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkOwnership, intervals, RingScenario, Traffic, type NodeMsg } from './harness.js';

// The hand-off drains: a call in flight on the old owner when the move starts completes there; calls that
// arrive during the move are held by the caller and complete on the new owner; the new owner's onOwn starts
// only after the old owner finished (its in-flight call, then onRelease).
let server: NatsServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

it('hand-off drain: in-flight call completes on the old owner, calls during the move on the new one', async () => {
  const sc = new RingScenario(server.url, 'hd', 'actors', {
    PARTITIONS: '16',
    TTL_MS: '1500',
    RELEASE_MS: '100',
  });
  await sc.start('n1');
  await sc.start('n2');
  await sc.converged();
  const obs = sc.observer!;
  // A slow key owned by n1, and three more keys of the same partition.
  let slow = '';
  for (let i = 0; !slow; i++) if (obs.ownerOf(`slow:${i}`) === 'n1') slow = `slow:${i}`;
  const p = obs.partitionOf(slow);
  const same: string[] = [];
  for (let i = 0; same.length < 3; i++) if (obs.partitionOf(`k${i}`) === p) same.push(`k${i}`);
  const traffic = await Traffic.open(server.url, 'hd');
  const n1 = sc.children.get('n1')!;
  const inFlight = traffic.call('actors', slow);
  await n1.waitForMessage<NodeMsg>(
    (m) => m.type === 'exec' && m.p === p,
    10_000,
    'the slow call running on n1',
  );
  await obs.pin(p, 'n2');
  await n1.waitForMessage<NodeMsg>(
    (m) => m.type === 'event' && m.event?.type === 'release-start' && m.event.partition === p,
    10_000,
    'n1 starting the hand-off',
  );
  const during = same.map((k) => traffic.call('actors', k));
  await new Promise((r) => setTimeout(r, 400));
  // Nothing has moved yet: n1 still drains its call; the new calls are held, none ran anywhere.
  const n2 = sc.children.get('n2')!;
  expect(n2.messages<NodeMsg>().some((m) => m.type === 'start' && m.p === p)).toBe(false);
  expect(sc.messages().filter((m) => m.type === 'exec' && m.p === p)).toHaveLength(1);
  n1.send({ cmd: 'finish' });
  const first = await inFlight;
  expect(first.error).toBeUndefined();
  expect(first.reply!.node).toBe('n1');
  const later = await Promise.all(during);
  for (const c of later) {
    expect(c.error).toBeUndefined();
    expect(c.reply!.node).toBe('n2');
    expect(c.reply!.epoch).toBeGreaterThan(first.reply!.epoch);
  }
  await waitFor(() => obs.ownerOf(slow) === 'n2', { timeoutMs: 5000 });
  const msgs = sc.messages();
  const end1 = msgs.find((m) => m.type === 'end' && m.node === 'n1' && m.p === p)!;
  const start2 = msgs.find(
    (m) => m.type === 'start' && m.node === 'n2' && m.p === p && m.epoch! > first.reply!.epoch,
  )!;
  const firstDone = first.doneAt!;
  // Order: the in-flight call finished, then n1's onRelease finished, then n2's onOwn started.
  expect(end1.at).toBeGreaterThanOrEqual(firstDone - 5); // the reply travels after the handler returned
  expect(start2.at).toBeGreaterThan(end1.at);
  expect(checkOwnership(intervals(msgs, []))).toEqual([]);
  console.log(
    `[hand-off] in-flight call on n1 took ${(first.doneAt! - first.sentAt).toFixed(0)} ms; n1 released ${(start2.at - end1.at).toFixed(1)} ms before n2 began owning; ` +
      `held calls completed on n2 ${(Math.max(...later.map((c) => c.doneAt!)) - firstDone).toFixed(0)} ms after the in-flight call`,
  );
  await traffic.close();
  await sc.close();
});
