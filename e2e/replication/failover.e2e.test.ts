import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, seededRandom, spawnNode, startServer, waitFor } from '@gc/testkit';
import { createSnapshotStore, formatChecksum, hashFile } from '@gc/snapshot';
import { createPrimary, createReplica, promote, type ReplicaEvent } from '@gc/wal';
import { reconnectingConnection, useServer } from '../test/server.js';
import { expectAcked, ids, startAckedWriter } from './harness.js';

const fixture = (f: string) => new URL(`./fixtures/${f}`, import.meta.url).pathname;
const nats = useServer();
let n = 0;
const nextApp = () => `f${++n}`;

describe('failover with data', () => {
  it('kill -9 of the primary during steady writes: the promoted replica passes integrity_check and has every sync()-acknowledged row', async () => {
    const dir = await makeTempDir('e2e-failover');
    const app = nextApp();
    const child = spawnNode(fixture('primary.ts'), {
      env: { NATS_URL: nats.server.url, DB_PATH: join(dir, 'primary.db'), APP: app, EPOCH: '1' },
    });
    await child.waitForMessage((m: { type: string }) => m.type === 'ready', 30_000, 'primary ready');
    const replicaPath = join(dir, 'node2.db');
    const replica = await createReplica(nats.nc, { platform: 'e2e', app, path: replicaPath });
    await child.waitForMessage(
      (m: { type: string; id?: number }) => m.type === 'acked' && m.id! >= 200,
      30_000,
      'acks',
    );
    await child.kill('SIGKILL');
    const acked = child.messages<{ type: string; id: number }>().filter((m) => m.type === 'acked');
    const lastAcked = acked.at(-1)!.id;
    const { primary, timings } = await promote(
      replica,
      { platform: 'e2e', app, path: replicaPath },
      nats.nc,
      {
        epoch: 2,
      },
    );
    const rows = ids(replicaPath);
    for (let id = 1; id <= lastAcked; id++) expect(rows.has(id), `acknowledged row ${id}`).toBe(true);
    const check = primary.db.pragma('integrity_check', { simple: true });
    expect(check).toBe('ok');
    console.log(
      `failover: ${acked.length} acks, last acked row ${lastAcked}, rows present ${rows.size}, promotion ${JSON.stringify(timings)}`,
    );
    // The new primary continues the history.
    await primary.write((db) => db.prepare('INSERT INTO t (v) VALUES (?)').run('after failover'));
    const pos = await primary.sync();
    expect(pos.epoch).toBe(2);
    await primary.close();
  });
});

describe('R4: nats-server restarts during writes', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal}: every transaction acknowledged by sync() is in the replica`, async () => {
      const local = await startServer();
      const lnc = await reconnectingConnection(local.url);
      const dir = await makeTempDir('e2e-r4');
      const app = nextApp();
      const primary = await createPrimary(lnc, {
        platform: 'e2e',
        app,
        path: join(dir, 'p.db'),
        epoch: 1,
        publishTimeoutMs: 1000,
      });
      primary.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      const writer = startAckedWriter(primary, 20_000);
      const { acked } = writer;
      await waitFor(() => acked.length >= 20, { timeoutMs: 20_000 });
      await local.restart(signal);
      const afterRestart = acked.length;
      await waitFor(() => acked.length >= afterRestart + 20, {
        timeoutMs: 30_000,
        message: 'acks after the restart',
      });
      await writer.stop();
      const final = await primary.sync();
      const replica = await createReplica(lnc, { platform: 'e2e', app, path: join(dir, 'r.db') });
      await replica.waitForTxid(final.txid, 30_000);
      expect(replica.position().checksum).toBe(final.checksum);
      expectAcked(replica.replicaPath, acked);
      await replica.close();
      await primary.close();
      await lnc.close();
      await local.close();
    });
  }
});

describe('R5: crashes', () => {
  it('kill -9 of a replica mid-apply: it resumes from its durable position with no gap', async () => {
    const dir = await makeTempDir('e2e-r5');
    const app = nextApp();
    const primary = await createPrimary(nats.nc, { platform: 'e2e', app, path: join(dir, 'p.db'), epoch: 1 });
    primary.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)');
    const replicaPath = join(dir, 'r.db');
    const env = { NATS_URL: nats.server.url, DB_PATH: replicaPath, APP: app };
    let final = await primary.sync();
    const rnd = seededRandom(Number(process.env.GC_R5_SEED ?? 5));
    let redone = 0;
    for (let round = 0; round < 6; round++) {
      const child = spawnNode(fixture('replica.ts'), { env, label: `replica-${round}` });
      const ready = await child.waitForMessage(
        (m: { type: string; position: { txid: number } }) => m.type === 'ready',
        30_000,
        'replica ready',
      );
      // Resumed from its own copy (no snapshot exists here, a re-bootstrap would start at 0), after redoing
      // from the stream whatever the kill interrupted.
      if (round > 0) {
        expect(ready.position.txid).toBeGreaterThan(0);
        const start = child.messages<{ type: string; from?: string; reason?: string }>()[0];
        expect(start).toMatchObject({ type: 'bootstrap', from: 'local' });
        if (start?.reason) redone++;
      }
      // SIGKILL while the primary is still writing and the replica applying: at a seeded point of the round.
      const from = final.txid;
      const writing = (async () => {
        for (let i = 0; i < 40; i++) {
          await primary.write((db) =>
            db.prepare('INSERT INTO t (v, b) VALUES (?, randomblob(300000))').run(`r${round}.${i}`),
          );
        }
      })();
      const killAt = from + 2 + Math.floor(rnd() * 30);
      await child.waitForMessage(
        (m: { type: string; txid?: number }) => m.type === 'applied' && m.txid! >= killAt,
        30_000,
        'applying',
      );
      await child.kill('SIGKILL');
      expect(child.messages<{ type: string }>().filter((m) => m.type === 'refused')).toEqual([]);
      await writing;
      final = await primary.sync();
    }
    const child = spawnNode(fixture('replica.ts'), { env, label: 'replica-final' });
    await child.waitForMessage(
      (m: { type: string; txid?: number; position?: { txid: number } }) =>
        (m.type === 'applied' && m.txid === final.txid) ||
        (m.type === 'ready' && m.position!.txid === final.txid),
      30_000,
      'caught up',
    );
    expect(child.messages<{ type: string }>().filter((m) => m.type === 'refused')).toHaveLength(0);
    await child.stop();
    expect(formatChecksum(hashFile(`${replicaPath}.replica`).checksum)).toBe(final.checksum);
    await primary.close();
    console.log(`[R5] ${redone} of 5 restarts redid transactions a kill interrupted from the stream`);
  });

  it('kill -9 of the primary mid-snapshot upload: the half-written snapshot is never listed or restored', async () => {
    const dir = await makeTempDir('e2e-r5-snap');
    const app = nextApp();
    const child = spawnNode(fixture('primary.ts'), {
      env: {
        NATS_URL: nats.server.url,
        DB_PATH: join(dir, 'p.db'),
        APP: app,
        SNAPSHOT: '1',
        SNAPSHOT_ROWS: '2000',
        SCRATCH: dir,
      },
    });
    const first = await child.waitForMessage(
      (m: { type: string; txid: number }) => m.type === 'snapshot-done',
      60_000,
      'first snapshot',
    );
    await child.waitForMessage(
      (m: { type: string; done: number; total: number }) => m.type === 'progress' && m.done > m.total / 3,
      60_000,
      'upload progress',
    );
    await child.kill('SIGKILL');
    expect(child.messages<{ type: string }>().filter((m) => m.type === 'snapshot-done')).toHaveLength(1);
    const store = await createSnapshotStore(nats.nc, { platform: 'e2e', app });
    expect((await store.list()).map((s) => s.txid)).toEqual([first.txid]);
    const events: ReplicaEvent[] = [];
    const replicaPath = join(dir, 'node2.db');
    const replica = await createReplica(nats.nc, {
      platform: 'e2e',
      app,
      path: replicaPath,
      snapshots: store,
    });
    replica.onEvent((e) => events.push(e));
    expect(replica.position().txid).toBeGreaterThanOrEqual(first.txid);
    const { primary } = await promote(replica, { platform: 'e2e', app, path: replicaPath }, nats.nc, {
      epoch: 2,
    });
    expect(primary.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(
      (
        primary.db.prepare("SELECT count(*) AS c FROM t WHERE v = 'after first snapshot'").get() as {
          c: number;
        }
      ).c,
    ).toBe(1);
    await primary.close();
    expect(readdirSync(dir).some((f) => f.includes('.restore-'))).toBe(false);
    expect(existsSync(replicaPath)).toBe(true);
  });
});
