import { connect, fencedKv } from '@gc/core';
import { spawnNode, type ChildNode } from '@gc/testkit';
import { Kvm } from '@nats-io/kv';
import { expect, it } from 'vitest';
import { useServer } from '../test/server.js';

// fencedKv on a real NATS KV bucket: two writer processes with different epochs race on one key. Every write
// of the lower epoch that lands after the higher epoch's first write is refused by the server's
// compare-and-set; the epochs of the accepted writes never go down in revision order.

const nats = useServer({ connect: (url) => connect({ servers: url, name: 'e2e-fenced-kv' }) });

interface Done {
  type: string;
  results: Array<{ revision: number; result: string; at: number; doneAt: number }>;
}

const fixture = new URL('./fixtures/fenced-writer.ts', import.meta.url).pathname;

it('two writers with epochs 10 and 11 racing on one key: every write of 10 after the first of 11 is refused', async () => {
  const bucket = 'fenced_race';
  await new Kvm(nats.nc).create(bucket, { history: 1 });
  const start = (id: string, epoch: number): ChildNode =>
    spawnNode(fixture, {
      label: id,
      env: {
        NATS_URLS: nats.server.url,
        BUCKET: bucket,
        KEY: 'register',
        EPOCH: String(epoch),
        WRITES: '300',
        NODE_ID: id,
      },
    });
  const low = start('low', 10);
  const high = start('high', 11);
  await Promise.all(
    [low, high].map((c) => c.waitForMessage((m: { type: string }) => m.type === 'ready', 20_000)),
  );
  low.send({ cmd: 'go' });
  // The higher epoch joins while the lower one is writing.
  await new Promise((r) => setTimeout(r, 50));
  high.send({ cmd: 'go' });
  const [l, h] = await Promise.all(
    [low, high].map((c) => c.waitForMessage<Done>((m) => m.type === 'done', 60_000, 'writes done')),
  );
  const lowOk = l!.results.filter((r) => r.result === 'ok');
  const highOk = h!.results.filter((r) => r.result === 'ok');
  const firstHigh = Math.min(...highOk.map((r) => r.revision));
  console.log(
    `[fenced-kv] low: ${lowOk.length} ok, ${l!.results.filter((r) => r.result === 'fenced').length} fenced; high: ${highOk.length} ok, ${h!.results.filter((r) => r.result !== 'ok').length} not ok`,
  );
  expect(highOk).toHaveLength(300); // the highest epoch is never refused (races with itself are retried)
  expect(lowOk.length).toBeGreaterThan(0); // it wrote before the higher epoch came
  // In the server's order (revisions), no write of epoch 10 comes after the first of epoch 11 ...
  expect(lowOk.filter((r) => r.revision > firstHigh)).toEqual([]);
  // ... and every write of epoch 10 sent after the first write of 11 was acknowledged was refused (not "after
  // it was sent": a write of 11 may retry on conflicts while writes of 10 still land before it).
  const firstHighDone = h!.results.find((x) => x.revision === firstHigh)!.doneAt;
  const lowAfter = l!.results.filter((r) => r.at > firstHighDone + 50);
  expect(lowAfter.length).toBeGreaterThan(0);
  expect(lowAfter.every((r) => r.result === 'fenced')).toBe(true);
  // The key holds the higher epoch's last write.
  const reader = fencedKv(await new Kvm(nats.nc).open(bucket), { epoch: () => undefined });
  expect((await reader.get('register'))?.epoch).toBe(11);
}, 90_000);
