// Scale-out is proven, not assumed: R4 (a server killed during writes) and R18 (an external sqlite3 writer)
// on a 3-node JetStream cluster, the WAL stream and the snapshot store with 3 replicas, killing the server
// that leads the WAL stream mid-run (SIGKILL, restarted a moment later). Nothing acknowledged is lost, the
// replica ends byte-identical, and a promotion on another server's connection carries every acknowledged row.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeTempDir,
  startCluster,
  waitFor,
  type Cluster,
  type NatsServer,
  SqliteCli,
  WORKLOAD_SCHEMA,
  seededRandom,
  workloadSql,
} from '@gc/testkit';
import { createSnapshotStore, openDatabase } from '@gc/snapshot';
import { createPrimary, createReplica, promote, walNames } from '@gc/wal';
import { reconnectingConnection } from '../test/server.js';
import { expectAcked, startAckedWriter } from './harness.js';

let cluster: Cluster;
let n = 0;
const nextApp = () => `cl${++n}`;
const conns: NatsConnection[] = [];
const open = async (servers: string[]) => {
  const c = await reconnectingConnection(servers);
  conns.push(c);
  return c;
};

beforeAll(async () => {
  cluster = await startCluster({ size: 3 });
});
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await cluster?.close();
});

/** The server that leads the app's WAL stream (its RAFT group), by name. */
async function streamLeader(nc: NatsConnection, app: string): Promise<NatsServer> {
  const jsm = await jetstreamManager(nc);
  const name = await waitFor(
    async () => (await jsm.streams.info(walNames('e2e', app).stream)).cluster?.leader,
    { timeoutMs: 20_000, message: 'WAL stream leader' },
  );
  return cluster.servers.find((s) => s.name === name)!;
}

describe('on a 3-node JetStream cluster (R3 stream and snapshots)', () => {
  it('R4: the server leading the WAL stream is killed during writes: every sync()-acknowledged row survives, also through a promotion', async () => {
    const app = nextApp();
    const dir = await makeTempDir('cl-r4');
    const pnc = await open(cluster.urls);
    const primary = await createPrimary(pnc, {
      platform: 'e2e',
      app,
      path: join(dir, 'p.db'),
      epoch: 1,
      streamReplicas: 3,
      publishTimeoutMs: 2000,
    });
    primary.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const snapshots = await createSnapshotStore(pnc, { platform: 'e2e', app, replicas: 3 });
    // The replica reads through another server than the primary's first one.
    const rnc = await open([cluster.urls[2]!, cluster.urls[1]!, cluster.urls[0]!]);
    const rPath = join(dir, 'r.db');
    const replica = await createReplica(rnc, {
      platform: 'e2e',
      app,
      path: rPath,
      snapshots,
      streamReplicas: 3,
    });
    const writer = startAckedWriter(primary, 30_000);
    const { acked } = writer;
    await waitFor(() => acked.length >= 30, { timeoutMs: 30_000, message: 'first acks' });
    // A snapshot (R3 object store) taken before the fault, so the trim point moves too.
    const src = await primary.snapshotTo(await makeTempDir('cl-r4-snap'));
    await snapshots.put(src.path, src.position);
    const victim = await streamLeader(pnc, app);
    await victim.kill();
    const during = acked.length;
    await waitFor(() => acked.length >= during + 30, {
      timeoutMs: 60_000,
      message: 'acks with the stream leader down',
    });
    await victim.start();
    await cluster.waitReady();
    const after = acked.length;
    await waitFor(() => acked.length >= after + 30, { timeoutMs: 60_000, message: 'acks after the restart' });
    await writer.stop();
    const final = await primary.sync(30_000);
    await replica.waitForTxid(final.txid, 60_000);
    expect(replica.position().checksum).toBe(final.checksum);
    expectAcked(replica.replicaPath, acked);
    // The old primary goes; the replica (on another server) is promoted with every acknowledged row.
    await primary.close();
    const { primary: next } = await promote(replica, { platform: 'e2e', app, path: rPath }, rnc, {
      epoch: 2,
      streamReplicas: 3,
    });
    expectAcked(rPath, acked, ' after promotion');
    console.log(
      `cluster R4: ${acked.length} acknowledged rows, stream leader ${victim.name} killed and restarted`,
    );
    await next.close();
  }, 240_000);

  it('R18: an external sqlite3 writer while the stream leader is killed: file, stream and replica identical', async () => {
    for (const seed of [1, 2, 3]) {
      const app = nextApp();
      const dir = await makeTempDir('cl-r18');
      const path = join(dir, 'db.sqlite');
      const init = openDatabase(path);
      init.pragma('journal_mode = WAL');
      init.exec(WORKLOAD_SCHEMA);
      init.close();
      const pnc = await open(cluster.urls);
      const primary = await createPrimary(pnc, {
        platform: 'e2e',
        app,
        path,
        epoch: 1,
        streamReplicas: 3,
        publishTimeoutMs: 2000,
      });
      const rnc = await open([...cluster.urls].reverse());
      const replica = await createReplica(rnc, {
        platform: 'e2e',
        app,
        path: join(dir, 'r.db'),
        streamReplicas: 3,
      });
      const rnd = seededRandom(seed);
      const cli = new SqliteCli(path);
      for (let i = 0; i < 20; i++) await cli.exec(workloadSql(rnd).sql);
      const victim = await streamLeader(pnc, app);
      await victim.kill();
      for (let i = 0; i < 20; i++) await cli.exec(workloadSql(rnd).sql);
      await cli.close();
      await victim.start();
      await cluster.waitReady();
      const pos = await primary.sync(60_000);
      const r = openDatabase(path, { readonly: true });
      r.exec('BEGIN');
      r.prepare('SELECT count(*) FROM sqlite_master').get();
      const bytes = r.serialize();
      r.exec('COMMIT');
      r.close();
      await replica.waitForTxid(pos.txid, 60_000).catch(async (err: unknown) => {
        const jsm = await jetstreamManager(pnc);
        const info = await jsm.streams.info(walNames('e2e', app).stream);
        throw new Error(
          `${(err as Error).message}; replica ${JSON.stringify(replica.position())} ${JSON.stringify(replica.state())}; stream ${JSON.stringify(info.state)} leader ${info.cluster?.leader}`,
        );
      });
      expect(replica.position().checksum, `seed ${seed}`).toBe(pos.checksum);
      expect(Buffer.compare(readFileSync(replica.replicaPath), bytes), `seed ${seed}`).toBe(0);
      await replica.close();
      await primary.close();
    }
  }, 240_000);
});
