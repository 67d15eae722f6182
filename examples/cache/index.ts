// A distributed cache on ring mode: the app's 64 partitions are spread over every node that runs it, each
// key lives on the one node that owns its partition, and any node answers HTTP by calling the owner
// (`{ to: { key } }`). When a partition moves (a node joins, leaves politely, or is pinned elsewhere) the old
// owner writes the partition's entries to the app's KV in `onRelease` and the new owner loads them in
// `onOwn`, so nothing is lost on a polite move; a crashed node's entries since its last flush are (it is a
// cache). Start it on several machines (or shells) with the same PLATFORM and NATS_URL:
//
//   NATS_URL=nats://127.0.0.1:4222 NODE_ID=a PORT=3101 pnpm --filter @gc/example-cache start
//   NATS_URL=nats://127.0.0.1:4222 NODE_ID=b PORT=3102 pnpm --filter @gc/example-cache start
//   curl -X PUT --data hello 127.0.0.1:3101/k/user:42 ; curl 127.0.0.1:3102/k/user:42
import { createServer } from 'node:http';
import { createPlatform } from '@gc/platform';

const nodeId = process.env.NODE_ID ?? 'a';
const port = Number(process.env.PORT ?? 3100);
const platform = await createPlatform({
  name: process.env.PLATFORM ?? 'example',
  nodeId,
  nats: { servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
  dataDir: process.env.DATA_DIR ?? `.gc/example/${nodeId}`,
});

const cache = platform.app('cache', { mode: 'ring', ring: { partitions: 64, ttlMs: 3000 } });
/** The entries of the partitions this node owns: partition → key → value. */
const shards = new Map<number, Map<string, string>>();
const flushKey = (partition: number) => `partition-${partition}`;

cache.on('onOwn', async ({ partition, from }) => {
  const saved = await (await cache.kv()).get(flushKey(partition));
  const entries = saved?.operation === 'PUT' ? (saved.json<Record<string, string>>() ?? {}) : {};
  shards.set(partition, new Map(Object.entries(entries)));
  console.log(
    `${nodeId}: owns partition ${partition} (${shards.get(partition)!.size} entries, from ${from ?? 'nobody'})`,
  );
});
cache.on('onRelease', async ({ partition, to }) => {
  // Calls for the partition have finished and new ones are held for `to`: the entries are final here.
  const entries = Object.fromEntries(shards.get(partition) ?? []);
  await (await cache.kv()).put(flushKey(partition), JSON.stringify(entries));
  shards.delete(partition);
  console.log(`${nodeId}: released partition ${partition} to ${to ?? 'nobody'}`);
});

// Run only on the key's owner: the platform admits a key-routed call only where the key's partition is served.
const shardOf = (key: string) => shards.get(cache.ring()!.partitionOf(key))!;
cache.handle('get', ({ key }: { key: string }) => ({ value: shardOf(key).get(key) ?? null, node: nodeId }));
cache.handle('put', ({ key, value }: { key: string; value: string }) => {
  shardOf(key).set(key, value);
  return { node: nodeId };
});

const api = platform.api('cache');
const http = createServer((req, res) => {
  void (async () => {
    const key = decodeURIComponent(req.url?.match(/^\/k\/(.+)$/)?.[1] ?? '');
    if (!key) return void res.writeHead(404).end('use /k/<key>\n');
    if (req.method === 'PUT') {
      let value = '';
      for await (const chunk of req) value += String(chunk);
      const r = await api.call<{ node: string }>('put', { key, value }, { to: { key } });
      return void res.end(JSON.stringify({ key, stored: true, owner: r.node }));
    }
    const r = await api.call<{ value: string | null; node: string }>('get', { key }, { to: { key } });
    res.writeHead(r.value === null ? 404 : 200).end(JSON.stringify({ key, value: r.value, owner: r.node }));
  })().catch((err: unknown) => res.writeHead(503).end(String(err)));
});

await platform.start();
await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
console.log(`${nodeId}: cache on port ${port}; health at ${platform.httpUrl()}/health`);
const stop = () => {
  http.close();
  // A polite leave: every partition is handed off (onRelease flushes it) before the process exits.
  void platform.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
