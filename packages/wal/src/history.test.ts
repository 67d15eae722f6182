// The replicated history's tip and who may publish: each test here is a way the first wave lost committed
// data (a new primary restarting txids after a trim, a stale copy published as the truth, a replica behind
// the trim point waiting silently, refusals looping, a corrupt only snapshot, replicas sharing a connection).
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, ServerFixture, waitFor } from '@gc/testkit';
import { createSnapshotStore } from '@gc/snapshot';
import { formatChecksum, hashFile, openDatabase } from '@gc/sqlite';
import { createPrimary } from './primary.js';
import { createReplica } from './replica.js';
import type { Primary, PrimaryEvent, ReplicaEvent } from './types.js';
import { promote } from './promote.js';
import { NotAtTipError, PromotionError, ReplicaStalledError } from './errors.js';
import { streamTip, trimWalStream, walNames } from './stream.js';
import { SqliteCli, WORKLOAD_SCHEMA } from './testing.js';

let appSeq = 0;
const platform = 'wh';
const nextApp = () => `hist${++appSeq}`;

const nats = new ServerFixture();
beforeAll(() => nats.start());
afterAll(() => nats.close());

async function freshPrimary(tag: string, extra: Partial<Parameters<typeof createPrimary>[1]> = {}) {
  const dir = await makeTempDir(tag);
  const app = nextApp();
  const path = join(dir, 'p.db');
  const primary = await createPrimary(nats.nc, { platform, app, path, epoch: 1, ...extra });
  primary.db.exec(WORKLOAD_SCHEMA);
  await primary.sync();
  return { dir, app, path, primary };
}

/** A primary of `app` on `path` (`extra` over the defaults), with the events it reported. */
async function primaryOf(
  app: string,
  path: string,
  extra: Partial<Parameters<typeof createPrimary>[1]> & { epoch: number },
) {
  const events: PrimaryEvent[] = [];
  const primary = await createPrimary(nats.nc, {
    platform,
    app,
    path,
    ...extra,
    onEvent: (e) => events.push(e),
  });
  return { primary, events };
}

/** A replica of `app` on `path` (`extra` over the defaults), with the events it reported. */
async function replicaOf(
  app: string,
  path: string,
  extra: Partial<Parameters<typeof createReplica>[1]> = {},
) {
  const events: ReplicaEvent[] = [];
  const replica = await createReplica(nats.nc, {
    platform,
    app,
    path,
    ...extra,
    onEvent: (e) => events.push(e),
  });
  return { replica, events };
}

/** The primary of epoch 2 on `path`, which must continue the history without a resync. */
async function nextPrimaryWithoutResync(app: string, path: string): Promise<Primary> {
  const { primary, events } = await primaryOf(app, path, { epoch: 2 });
  expect(events.filter((e) => e.type === 'resync')).toEqual([]);
  return primary;
}

async function insert(p: Primary, n: number, tag = 'row'): Promise<number> {
  for (let i = 0; i < n; i++)
    await p.write((db) => db.prepare('INSERT INTO t (v) VALUES (?)').run(`${tag} ${i}`));
  return (await p.sync()).txid;
}

function rows(path: string): number {
  const db = openDatabase(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * A fresh primary with `n` rows, its snapshot store, and a replica at `rPath` that caught up with it and
 * closed again: it comes back later, behind.
 */
async function withReplicaAway(tag: string, n: number) {
  const { dir, app, primary } = await freshPrimary(tag);
  const store = await createSnapshotStore(nats.nc, { platform, app });
  await insert(primary, n);
  const rPath = join(dir, 'r.db');
  const replica = await createReplica(nats.nc, { platform, app, path: rPath, snapshots: store });
  await replica.waitForTxid((await primary.sync()).txid);
  await replica.close();
  return { app, primary, store, rPath };
}

async function snapshotAndTrim(app: string, p: Primary): Promise<{ txid: number; seq: number }> {
  const store = await createSnapshotStore(nats.nc, { platform, app });
  const src = await p.snapshotTo(await makeTempDir('hist-snap'));
  const info = await store.put(src.path, src.position);
  await trimWalStream(await jetstreamManager(nats.nc), walNames(platform, app), info.seq + 1);
  return info;
}

describe("the history's tip survives trimming", () => {
  it('trimming keeps the last transaction, and a new primary continues the txids instead of starting at 1', async () => {
    const { app, path, primary } = await freshPrimary('hist-trim');
    const last = await insert(primary, 5);
    const snap = await snapshotAndTrim(app, primary);
    expect(snap.txid).toBe(last);
    const jsm = await jetstreamManager(nats.nc);
    const tip = await streamTip(jsm, walNames(platform, app));
    expect(tip.txid).toBe(last); // not an empty stream
    await primary.stop();
    const next = await nextPrimaryWithoutResync(app, path);
    expect((await next.sync()).txid).toBe(last + 1); // the new epoch's marker, after the old history
    expect(await insert(next, 2)).toBe(last + 3);
    await next.stop();
  });

  it('a stream purged to nothing by hand: the tip comes from the newest snapshot and txids are not reused', async () => {
    const { app, path, primary } = await freshPrimary('hist-purged');
    const last = await insert(primary, 4);
    await snapshotAndTrim(app, primary);
    await primary.stop();
    const jsm = await jetstreamManager(nats.nc);
    await jsm.streams.purge(walNames(platform, app).stream);
    const next = await nextPrimaryWithoutResync(app, path);
    expect((await next.sync()).txid).toBeGreaterThan(last);
    expect((await streamTip(jsm, walNames(platform, app))).txid).toBeGreaterThan(last);
    await next.stop();
  });
});

describe('only a database proven to be the tip is published', () => {
  it('a stale copy is refused with NotAtTipError and publishes nothing; unprovenState "publish" continues the txids', async () => {
    const { dir, app, primary } = await freshPrimary('hist-stale');
    await insert(primary, 3);
    const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
    const stale = (await primary.sync()).txid;
    await replica.waitForTxid(stale);
    await replica.close();
    const last = await insert(primary, 5, 'after');
    await primary.stop();
    const stalePath = join(dir, 'stale.db');
    writeFileSync(stalePath, readFileSync(replica.replicaPath));
    const jsm = await jetstreamManager(nats.nc);
    const before = await streamTip(jsm, walNames(platform, app));
    const err = await createPrimary(nats.nc, { platform, app, path: stalePath, epoch: 2 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotAtTipError);
    expect((err as NotAtTipError).kind).toBe('diverged');
    expect((err as NotAtTipError).tipTxid).toBe(last);
    const after = await streamTip(jsm, walNames(platform, app));
    expect(after.seq).toBe(before.seq); // nothing was published
    // The operator's explicit decision: published in full, after the history, never restarting at 1.
    const { primary: forced, events } = await primaryOf(app, stalePath, {
      epoch: 3,
      unprovenState: 'publish',
    });
    const resync = events.find((e) => e.type === 'resync');
    expect(resync).toMatchObject({ txid: last + 1 });
    expect((resync as { reason: string }).reason).toMatch(/deliberately/);
    await forced.stop();
  });

  it('a replica behind the trim point is promoted only after it bootstrapped from the snapshot and caught up', async () => {
    const { app, primary, store, rPath } = await withReplicaAway('hist-behind', 3);
    await insert(primary, 10, 'while away');
    await snapshotAndTrim(app, primary);
    const last = await insert(primary, 2, 'after snapshot');
    const expected = rows(primary.db.name);
    await primary.stop();
    const { replica, events } = await replicaOf(app, rPath, { snapshots: store });
    const { primary: promoted } = await promote(replica, { platform, app, path: rPath }, nats.nc, {
      epoch: 2,
    });
    expect(promoted.position().txid).toBe(last + 1);
    expect(rows(rPath)).toBe(expected);
    const bootstraps = events.filter((e) => e.type === 'bootstrap').map((e) => (e as { from: string }).from);
    expect(bootstraps).toEqual(['local', 'snapshot']);
    await promoted.stop();
  });

  it('when the stream and every snapshot are gone, a replica holding a history is not published unless an operator says so', async () => {
    const { dir, app, primary } = await freshPrimary('hist-lost');
    await insert(primary, 4);
    const rPath = join(dir, 'r.db');
    const r1 = await createReplica(nats.nc, { platform, app, path: rPath });
    const txid = (await primary.sync()).txid;
    await r1.waitForTxid(txid);
    await primary.stop();
    await r1.close();
    const jsm = await jetstreamManager(nats.nc);
    await jsm.streams.delete(walNames(platform, app).stream);
    const r2 = await createReplica(nats.nc, { platform, app, path: rPath });
    const err = await promote(r2, { platform, app, path: rPath }, nats.nc, { epoch: 2 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PromotionError);
    expect(((err as PromotionError).cause as NotAtTipError).kind).toBe('history-lost');
    const r3 = await createReplica(nats.nc, { platform, app, path: rPath });
    const { primary: recovered } = await promote(r3, { platform, app, path: rPath }, nats.nc, {
      epoch: 3,
      unprovenState: 'publish',
    });
    expect(recovered.position().txid).toBeGreaterThan(txid); // the recovered history counts on
    expect(rows(rPath)).toBe(4);
    // Another node's replica, recorded against the deleted stream, follows the new one.
    const other = await createReplica(nats.nc, { platform, app, path: join(dir, 'other.db') });
    await other.waitForTxid(recovered.position().txid, 10_000);
    expect(other.position().checksum).toBe(recovered.position().checksum);
    await other.close();
    await recovered.stop();
  });
});

describe('replicas never wait silently and never loop', () => {
  it('a replica behind a stream trimmed to nothing bootstraps at once, with no new write needed', async () => {
    const { app, primary, store, rPath } = await withReplicaAway('hist-empty', 2);
    const last = await insert(primary, 1, 'one more');
    await snapshotAndTrim(app, primary);
    await primary.stop();
    await (await jetstreamManager(nats.nc)).streams.purge(walNames(platform, app).stream); // by hand: nothing left
    const replica = await createReplica(nats.nc, { platform, app, path: rPath, snapshots: store });
    await replica.waitForTxid(last, 5000);
    expect((await replica.lag()).transactions).toBe(0);
    await replica.close();
  });

  it('lag is measured against the tip, not against the last message the replica saw', async () => {
    const { dir, app, primary } = await freshPrimary('hist-lag');
    const rPath = join(dir, 'r.db');
    const replica = await createReplica(nats.nc, { platform, app, path: rPath });
    await replica.waitForTxid((await primary.sync()).txid);
    await replica.close();
    await insert(primary, 7);
    const r2 = await createReplica(nats.nc, { platform, app, path: join(dir, 'r2.db') });
    await r2.waitForTxid(primary.position().txid);
    expect((await r2.lag()).transactions).toBe(0);
    await r2.close();
    await primary.stop();
  });

  it('a refusal leads to one bootstrap, then the replica is stalled with the reason (no loop) until a newer snapshot helps', async () => {
    const { dir, app, primary } = await freshPrimary('hist-loop');
    await insert(primary, 6);
    const jsm = await jetstreamManager(nats.nc);
    const names = walNames(platform, app);
    // History cut by hand below the tip, with no snapshot: a new replica cannot get from empty to the tip.
    await jsm.streams.purge(names.stream, { seq: (await streamTip(jsm, names)).seq - 1 });
    const store = await createSnapshotStore(nats.nc, { platform, app });
    const { replica, events } = await replicaOf(app, join(dir, 'r.db'), {
      snapshots: store,
      retryDelayMs: 50,
      maxRetryDelayMs: 200,
    });
    await waitFor(() => replica.state().state === 'stalled', { timeoutMs: 10_000, message: 'stalled' });
    await new Promise((r) => setTimeout(r, 1500)); // many retry periods
    const bootstraps = events.filter((e) => e.type === 'bootstrap');
    expect(bootstraps).toHaveLength(2); // the start-up one (empty) and one for the refusal: no loop
    expect(events.filter((e) => e.type === 'refused')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'stalled')).toHaveLength(1);
    expect(replica.state().reason).toMatch(/gap/i);
    await expect(replica.catchUp(5000)).rejects.toBeInstanceOf(ReplicaStalledError);
    // A snapshot at the tip ends the stall.
    const src = await primary.snapshotTo(await makeTempDir('hist-loop-snap'));
    await store.put(src.path, src.position);
    await replica.waitForTxid(src.position.txid, 10_000);
    await waitFor(() => replica.state().state === 'following', { timeoutMs: 5000 });
    expect(events.some((e) => e.type === 'recovered')).toBe(true);
    await replica.close();
    await primary.stop();
  });

  it('when the only snapshot is corrupt, a replica replays the stream (which holds the whole history) instead of failing', async () => {
    const { dir, app, primary } = await freshPrimary('hist-corrupt');
    const last = await insert(primary, 5);
    const store = await createSnapshotStore(nats.nc, { platform, app });
    const src = await primary.snapshotTo(await makeTempDir('hist-corrupt-snap'));
    const info = await store.put(src.path, src.position);
    // Damage the stored object: same name and metadata, one byte flipped.
    const os = await new Objm(nats.nc).open(store.bucket);
    const meta = (await os.info(info.name))!;
    const bytes = readFileSync(src.path);
    const at = bytes.length - 100;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    await os.putBlob({ name: info.name, metadata: meta.metadata, description: meta.description }, bytes);
    const { replica, events } = await replicaOf(app, join(dir, 'r.db'), { snapshots: store });
    await replica.waitForTxid(last, 10_000);
    expect(replica.position().checksum).toBe((await primary.sync()).checksum);
    const boot = events.find((e) => e.type === 'bootstrap') as { from: string; reason?: string };
    expect(boot.from).toBe('empty');
    expect(boot.reason).toMatch(/failed verification/);
    await replica.close();
    await primary.stop();
  });
});

describe('writes that never reached the stream', () => {
  it('are set aside whole — the file with its WAL — when another process still holds the database open', async () => {
    // (the WAL is part of the state: hashing only the file would have "adopted" it and mixed pages)
    const { dir, app, path, primary } = await freshPrimary('hist-aside');
    await insert(primary, 2);
    await primary.stop();
    const cli = new SqliteCli(path); // keeps the database open: its WAL is not checkpointed by our close
    await cli.exec("PRAGMA wal_autocheckpoint=0; INSERT INTO t (v) VALUES ('offline 1'), ('offline 2');");
    const { replica, events } = await replicaOf(app, path);
    const unrep = events.find((e) => e.type === 'unreplicated-writes') as
      { error: { savedPath: string; lastReplicatedTxid: number } } | undefined;
    expect(unrep?.error.lastReplicatedTxid).toBeGreaterThan(0);
    await cli.close();
    const saved = unrep!.error.savedPath;
    expect(existsSync(path)).toBe(false);
    const db = openDatabase(saved, { readonly: true });
    const offline = db.prepare("SELECT count(*) AS n FROM t WHERE v LIKE 'offline%'").get() as { n: number };
    db.close();
    expect(offline.n).toBe(2);
    expect(readdirSync(dir).filter((f) => f.startsWith('p.db.unreplicated-'))).not.toHaveLength(0);
    await replica.close();
  });
});

describe('the file is compared with what was captured', () => {
  it('a change that never went through the WAL is found and published in full, so replicas hold the file', async () => {
    const { dir, app, path, primary } = await freshPrimary('hist-verify', { verifyIntervalMs: 100 });
    await insert(primary, 20);
    await primary.checkpoint();
    // Another process truncates the WAL: everything is in the database file now.
    const cli = new SqliteCli(path);
    await cli.exec('PRAGMA wal_checkpoint(TRUNCATE);');
    await cli.close();
    const events: PrimaryEvent[] = [];
    primary.onEvent((e) => events.push(e));
    // Bytes changed in the database file behind SQLite's back (the last page's unused tail).
    const buf = readFileSync(path);
    const pageSize = buf.readUInt16BE(16);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('outside'), 0, 7, buf.length - 16);
    closeSync(fd);
    await waitFor(() => events.some((e) => e.type === 'resync'), { timeoutMs: 5000, message: 'resync' });
    const pos = await primary.sync();
    expect(pos.checksum).toBe(formatChecksum(hashFile(path, { pageSizeBytes: pageSize }).checksum));
    const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
    await replica.waitForTxid(pos.txid);
    expect(replica.position().checksum).toBe(pos.checksum);
    await replica.close();
    await primary.stop();
  });
});

describe('replicas sharing one connection', () => {
  it('two replicas on one connection follow 1 MiB messages without becoming a slow consumer', async () => {
    const { dir, app, primary } = await freshPrimary('hist-shared');
    const other = await connect({ servers: nats.server.url }); // the replicas' shared connection
    const slow: unknown[] = [];
    void (async () => {
      for await (const s of other.status()) if (s.type === 'slowConsumer') slow.push(s);
    })();
    const replicas = await Promise.all(
      ['a', 'b'].map((n) => createReplica(other, { platform, app, path: join(dir, `${n}.db`) })),
    );
    // ~80 MiB of large transactions (each split into 1 MiB chunks) written while the replicas follow.
    const blob = primary.db.prepare('INSERT INTO t (v, b) VALUES (?, randomblob(?))');
    for (let i = 0; i < 40; i++) await primary.write(() => blob.run(`blob ${i}`, 2 << 20));
    const { txid, checksum } = await primary.sync();
    const t0 = performance.now();
    await Promise.all(replicas.map((r) => r.waitForTxid(txid, 60_000)));
    const ms = performance.now() - t0;
    for (const r of replicas) expect(r.position().checksum).toBe(checksum);
    expect(slow).toEqual([]);
    expect(ms).toBeLessThan(30_000);
    await Promise.all(replicas.map((r) => r.close()));
    await other.close();
    await primary.stop();
  });
});

describe('consumers', () => {
  it('are deleted when a replica stops consuming, so restarts and refusals never pile them up', async () => {
    const { dir, app, primary } = await freshPrimary('hist-consumers');
    await insert(primary, 3);
    const jsm = await jetstreamManager(nats.nc);
    const stream = walNames(platform, app).stream;
    for (let i = 0; i < 12; i++) {
      const r = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
      await r.waitForTxid(primary.position().txid);
      await r.close();
    }
    // nats.js leaves a stopped ordered consumer on the server for 5 minutes; the replica deletes its own.
    await waitFor(async () => (await jsm.streams.info(stream)).state.consumer_count === 0, {
      timeoutMs: 5000,
      message: 'no consumer left',
    });
    await primary.stop();
  });
});

describe('snapshots while another process writes back to back', () => {
  it('are taken without waiting for the write lock, each consistent at a captured commit', async () => {
    const { dir, path, primary } = await freshPrimary('hist-snapstarve', { busyTimeoutMs: 1000 });
    const cli = new SqliteCli(path);
    // One exec of 4000 single-row transactions: the CLI holds the write lock nearly all the time.
    const writes = cli.exec(
      Array.from({ length: 4000 }, (_, i) => `INSERT INTO t (v) VALUES ('w${i}');`).join('\n'),
      120_000,
    );
    const taken: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const snap = await primary.snapshotTo(await makeTempDir('hist-snapstarve-s'));
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(snap.position.checksum).toBe(formatChecksum(hashFile(snap.path).checksum));
      taken.push(snap.position.txid);
    }
    await writes;
    await cli.close();
    expect(new Set(taken).size).toBeGreaterThan(1); // taken while the writes went on
    expect(taken).toEqual([...taken].sort((a, b) => a - b));
    await primary.stop();
    void dir;
  });
});
