// examples/cache (a distributed cache on ring mode) run as a user runs it: node processes on a real
// nats-server, HTTP in and out. Keys written through one node are read through any other; a node that joins
// takes partitions over with their entries, and a node that leaves politely (SIGTERM) hands its partitions
// and their entries over: every key written is still there, served by its partition's new owner.
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { freePort, makeTempDir, spawnNode, waitFor, type ChildNode } from '@gc/testkit';
import { useServer } from '../test/server.js';

const entry = fileURLToPath(new URL('../../examples/cache/index.ts', import.meta.url));
const children: ChildNode[] = [];
const nats = useServer({ connect: false, closeFirst: () => Promise.all(children.map((c) => c.kill())) });

async function node(id: string): Promise<{ child: ChildNode; port: number }> {
  const port = await freePort();
  const child = spawnNode(entry, {
    label: `cache-${id}`,
    env: {
      NATS_URL: nats.server.url,
      NODE_ID: id,
      PORT: String(port),
      DATA_DIR: await makeTempDir(`cache-${id}`),
      PLATFORM: 'cachex',
    },
  });
  children.push(child);
  await waitFor(
    () => child.output().includes(`cache on port ${port}`) && child.output().includes('owns partition'),
    {
      timeoutMs: 30_000,
      message: () => `node ${id} serving\n${child.output()}`,
    },
  );
  return { child, port };
}

const url = (port: number, key: string) => `http://127.0.0.1:${port}/k/${encodeURIComponent(key)}`;
async function get(port: number, key: string): Promise<{ value: string | null; owner: string }> {
  const r = await fetch(url(port, key));
  const body = (await r.json()) as { value: string | null; owner: string };
  return body;
}

it('keys written through one node are read through any; joins and polite leaves move entries with their partitions', async () => {
  const a = await node('a');
  const b = await node('b');
  const keys = Array.from({ length: 40 }, (_, i) => `user:${i}`);
  for (const k of keys) {
    const r = await fetch(url(a.port, k), { method: 'PUT', body: `v-${k}` });
    expect(r.status).toBe(200);
  }
  const owners = new Set<string>();
  for (const k of keys) {
    const r = await get(b.port, k);
    expect(r.value).toBe(`v-${k}`);
    owners.add(r.owner);
  }
  expect([...owners].sort()).toEqual(['a', 'b']); // spread over both

  const c = await node('c'); // takes partitions over, with their entries
  await waitFor(() => c.child.output().includes('from a') || c.child.output().includes('from b'), {
    timeoutMs: 20_000,
    message: 'c took partitions from a or b',
  });
  const exit = await b.child.stop(20_000); // polite leave: b flushes and hands off every partition
  expect(exit.code).toBe(0);
  expect(b.child.output()).toMatch(/released partition \d+ to [ac]/);
  const after = new Set<string>();
  for (const k of keys) {
    // No retry: a call for a partition that is moving is held for its new owner, never answered empty.
    const r = await get(c.port, k);
    expect(r.value).toBe(`v-${k}`);
    after.add(r.owner);
  }
  expect([...after].every((o) => o === 'a' || o === 'c')).toBe(true);
}, 120_000);
