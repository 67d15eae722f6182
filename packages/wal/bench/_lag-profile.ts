// Diagnostic: gc's side of replication-lag only (primary + replica in this process, 1000 tx/s for
// SECONDS), for a CPU profile: node --cpu-prof … packages/wal/bench/_lag-profile.ts
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { makeTempDir, startServer } from '@gc/testkit';
import { createPrimary, createReplica } from '@gc/wal';
import { median, percentile, round, sleep } from './_util.js';

import { Socket } from 'node:net';
let writes = 0;
let writeBytes = 0;
// eslint-disable-next-line @typescript-eslint/unbound-method -- put back on the prototype below, called with apply
const origWrite = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
  writes++;
  writeBytes += (args[0] as Uint8Array).length ?? 0;
  return origWrite.apply(this, args);
} as Socket['write'];
const SECONDS = Number(process.env.SECONDS ?? 5);
const RATE = Number(process.env.RATE ?? 1000);
const server = await startServer();
const nc = await connect({ servers: server.url });
const dir = await makeTempDir('lag-profile');
const primary = await createPrimary(nc, { platform: 'bench', app: 'p', path: join(dir, 'p.db'), epoch: 1 });
primary.db.pragma('synchronous = NORMAL');
primary.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
const base = (await primary.sync()).txid;
const replica = await createReplica(nc, { platform: 'bench', app: 'p', path: join(dir, 'r.db') });
await replica.waitForTxid(base);
const commits: number[] = [];
const lags: number[] = [];
let done = 0;
replica.onEvent((e) => {
  if (e.type !== 'applied') return;
  const now = performance.now();
  for (; done < commits.length && base + done + 1 <= e.txid; done++) lags.push(now - commits[done]!);
});
const ins = primary.db.prepare('INSERT INTO t (v) VALUES (?)');
const commit = primary.db.transaction((i: number) => ins.run(`row ${i}`.padEnd(100, '.')));
const total = RATE * SECONDS;
const w0 = writes;
const b0 = writeBytes;
const t0 = performance.now();
for (let i = 0; i < total; i++) {
  const due = t0 + (i * 1000) / RATE;
  while (performance.now() < due) await sleep(Math.max(0, Math.min(5, due - performance.now())));
  commit(i);
  commits.push(performance.now());
  primary.captureNow();
}
await replica.waitForTxid(base + total, 30_000);
console.log(
  JSON.stringify({
    writesPerTx: (writes - w0) / total,
    bytesPerTx: (writeBytes - b0) / total,
    p50: round(median(lags)),
    p99: round(percentile(lags, 99)),
    n: lags.length,
  }),
);
await replica.close();
await primary.close();
await nc.close();
await server.close();
