// Diagnostic (not a bench with a bar): which NATS traffic one idle `gc run` node with the footprint bench's
// three apps makes, per subject pattern, per second. Run: node --conditions=@gc/source --import <tsx> packages/platform/bench/_idle-traffic.ts
import { fileURLToPath } from 'node:url';
import { connect } from '@gc/core';
import { makeTempDir, spawnNode, startServer, cleanupAll } from '@gc/testkit';
import { writeFootprintConfig } from './_node-config.js';

const bin = fileURLToPath(new URL('../../../apps/cli/bin/run.js', import.meta.url));
const profiled = fileURLToPath(new URL('./_profiled.ts', import.meta.url));
const SECONDS = Number(process.env.SECONDS ?? 30);
const server = await startServer();
const dir = await makeTempDir('idle-traffic');
try {
  const { path: cfg } = await writeFootprintConfig(dir, 'a', server.url);
  // PROFILE_DIR=<dir>: the node writes a CPU profile there when it stops.
  const child = spawnNode(process.env.PROFILE_DIR ? profiled : bin, {
    args: ['run', '-c', cfg],
    label: 'idle-a',
  });
  while (!child.output().includes('is running')) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 15_000));
  const nc = await connect({ servers: server.url });
  const counts = new Map<string, number>();
  const key = (s: string) =>
    s
      .replace(/\.[A-Za-z0-9]{22}$/, '.<id>')
      .replace(/_INBOX\.[^.]+(\..*)?/, '_INBOX.*')
      .replace(/\$JS\.ACK\..*/, '$JS.ACK.*');
  nc.subscribe('>', {
    callback: (_e, m) => void counts.set(key(m.subject), (counts.get(key(m.subject)) ?? 0) + 1),
  });
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  let total = 0;
  for (const [s, n] of rows) {
    total += n;
    console.log(`${(n / SECONDS).toFixed(2).padStart(7)}/s  ${s}`);
  }
  console.log(`${(total / SECONDS).toFixed(2).padStart(7)}/s  total`);
  await nc.close();
  await child.stop(30_000);
} finally {
  await server.close();
  await cleanupAll();
}
