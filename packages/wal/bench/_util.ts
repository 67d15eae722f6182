import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { join } from 'node:path';
import { createPrimary, createReplica, type PrimaryOptions } from '@gc/wal';
import type { SqliteDatabase } from '@gc/snapshot';
// Shared helpers of the @gc/wal benches (files starting with `_` are not benches).
export { median, percentile } from '@gc/testkit';
export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The replication-lag baseline: `count` messages of `bytes` published to a fresh stream at `rate` per
 * second (JetStream publish, acks awaited at the end) and read by an ordered consumer on the same
 * connection; returns each message's publish → delivery time in ms. The stream is deleted after.
 */
export async function rawLags(
  nc: NatsConnection,
  name: string,
  rate: number,
  count: number,
  bytes: number,
): Promise<number[]> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.x`] });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(name);
  const sent: number[] = [];
  const lags: number[] = [];
  const iter = await consumer.consume();
  const reading = (async () => {
    for await (const m of iter) {
      lags.push(performance.now() - sent[m.seq - 1]!);
      if (m.seq >= count) break;
    }
  })();
  const payload = new Uint8Array(bytes);
  const t0 = performance.now();
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / rate;
    while (performance.now() < due) await sleep(Math.max(0, Math.min(5, due - performance.now())));
    sent.push(performance.now());
    acks.push(js.publish(`${name}.x`, payload));
  }
  await Promise.all(acks);
  await reading;
  iter.stop();
  await jsm.streams.delete(name);
  return lags;
}

/**
 * A primary on a fresh database (`synchronous = NORMAL`, as WAL-mode apps usually run: the commit does not
 * wait for the disk, so the lag measured is replication's) with a table `t`, and a replica caught up with it.
 */
export async function startPair(
  nc: NatsConnection,
  dir: string,
  app: string,
  extra: Partial<PrimaryOptions> = {},
): Promise<{
  primary: Awaited<ReturnType<typeof createPrimary>>;
  replica: Awaited<ReturnType<typeof createReplica>>;
  base: number;
}> {
  const primary = await createPrimary(nc, {
    platform: 'bench',
    app,
    path: join(dir, `${app}.db`),
    epoch: 1,
    ...extra,
  });
  primary.db.pragma('synchronous = NORMAL');
  primary.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const base = (await primary.sync()).txid;
  const replica = await createReplica(nc, { platform: 'bench', app, path: join(dir, `${app}-r.db`) });
  await replica.waitForTxid(base);
  return { primary, replica, base };
}

/**
 * The write-overhead load: 5-row transactions committed on `db` (table `t`, made if missing) at
 * `synchronous`, yielding to the event loop every 20 (as an app serving requests would); `warmMs`
 * unmeasured (steady state: the database, the WAL and a capture engine warmed up), then the commits per
 * second over `measureMs`.
 */
export async function commitLoad(
  db: SqliteDatabase,
  synchronous: string,
  warmMs: number,
  measureMs: number,
): Promise<number> {
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  const tx = db.transaction((n: number) => {
    for (let r = 0; r < 5; r++) ins.run(`value ${n}.${r}`.padEnd(100, '.'));
  });
  let n = 0;
  const run = async (ms: number): Promise<number> => {
    const t0 = performance.now();
    const n0 = n;
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < 20; i++) tx(n++);
      await new Promise((r) => setImmediate(r));
    }
    return (n - n0) / ((performance.now() - t0) / 1000);
  };
  await run(warmMs);
  return run(measureMs);
}
