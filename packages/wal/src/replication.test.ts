import fs, { existsSync, readdirSync, readFileSync, statSync, type FSWatcher } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ClosedError, type GcError } from '@gc/core';
import { makeTempDir, ServerFixture, waitFor } from '@gc/testkit';
import { createSnapshotStore } from '@gc/snapshot';
import { NotWalModeError, formatChecksum, hashFile, openDatabase } from '@gc/sqlite';
import { createPrimary } from './primary.js';
import { createReplica } from './replica.js';
import type { Primary, PrimaryEvent, ReplicaEvent } from './types.js';
import type { WalPosition } from './position.js';
import { promote, demote } from './promote.js';
import { NotLeaderError, WrongOwnerError, WalErrorCode } from './errors.js';
import { walNames } from './stream.js';
import { WalHeader } from './wire.js';
import { firstDifferentPage, seededRandom, SqliteCli, workloadSql, WORKLOAD_SCHEMA } from './testing.js';

let appSeq = 0;
const platform = 'wt';
const nextApp = () => `app${++appSeq}`;

const nats = new ServerFixture({ server: { maxPayload: 64 * 1024 } });
beforeAll(() => nats.start());
afterAll(() => nats.close());

type Mode = 'inline' | 'worker';
const MODES: Mode[] = ['inline', 'worker'];
/** The capture engine in this thread or in a worker thread with its own connection. */
const engine = (mode: Mode) =>
  mode === 'worker' ? { worker: { connect: { servers: nats.server.url } } } : {};

function newDb(path: string) {
  const db = openDatabase(path);
  db.pragma('journal_mode = WAL');
  db.exec(WORKLOAD_SCHEMA);
  return db;
}

/** A fresh WAL database with the workload schema and a primary on it. */
async function startPrimaryOn(
  tag: string,
  mode: Mode,
  extra: Partial<Parameters<typeof createPrimary>[1]> = {},
) {
  const dir = await makeTempDir(tag);
  const app = nextApp();
  const path = join(dir, 'p.db');
  newDb(path).close();
  const primary = await createPrimary(nats.nc, { platform, app, path, epoch: 1, ...extra, ...engine(mode) });
  return { dir, app, path, primary };
}

/** A new replica catches up with everything `primary` committed and matches it page for page; closes both. */
async function expectReplicaMatches(
  dir: string,
  app: string,
  primary: Awaited<ReturnType<typeof createPrimary>>,
): Promise<void> {
  const pos = await primary.sync();
  const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
  await replica.waitForTxid(pos.txid);
  expectSamePages(primary.db, replica.replicaPath);
  await replica.close();
  await primary.close();
}

/** The replica file equals `db`'s committed state, page for page. */
/**
 * Commits back to back on the primary's connection for `ms`, yielding now and then, so that every poll finds
 * work (the primary drops its file watch); `each` runs after every commit.
 */
async function busySpell(primary: Primary, ms: number, each: () => void = () => undefined): Promise<void> {
  const ins = primary.db.prepare('INSERT INTO t (v) VALUES (?)');
  const t1 = performance.now();
  for (let i = 0; performance.now() - t1 < ms; i++) {
    ins.run(`busy ${i}`);
    if (i % 5 === 0) await new Promise((r) => setImmediate(r));
    each();
  }
}

/** A commit by an external `sqlite3` process is published within a second (the polls being far apart). */
async function expectExternalCommitCapturedAtOnce(path: string, primary: Primary): Promise<void> {
  const published: number[] = [];
  const off = primary.onEvent((e) => {
    if (e.type === 'published') published.push(e.txid);
  });
  const cli = new SqliteCli(path);
  const t0 = performance.now();
  await cli.exec("INSERT INTO t (v) VALUES ('from another process');");
  await waitFor(() => published.length > 0, { timeoutMs: 5000, message: 'published through the watch' });
  expect(performance.now() - t0).toBeLessThan(1000);
  off();
  await cli.close();
}

function expectSamePages(db: ReturnType<typeof openDatabase>, replicaPath: string): void {
  db.exec('BEGIN');
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  const primaryBytes = db.serialize();
  db.exec('COMMIT');
  expect(firstDifferentPage(primaryBytes, readFileSync(replicaPath), 4096)).toBe(0);
}

describe('primary → replica', () => {
  it.each(MODES)(
    'keeps byte-identical pages at every checked txid under a seeded workload with app checkpoints in every mode (engine %s)',
    async (mode) => {
      const dir = await makeTempDir('wal-rand');
      const app = nextApp();
      const path = join(dir, 'p.db');
      newDb(path).close();
      // The application is another program (the sqlite3 CLI) with its own checkpoints.
      const cli = new SqliteCli(path);
      const appDb = openDatabase(path, { readonly: true });
      const events: PrimaryEvent[] = [];
      const primary = await createPrimary(nats.nc, { platform, app, path, epoch: 1, ...engine(mode) });
      primary.onEvent((e) => events.push(e));
      const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
      const seed = Number(process.env.GC_SEED ?? 4242);
      const rnd = seededRandom(seed);
      let checks = 0;
      for (let step = 0; step < 120; step++) {
        const t = performance.now();
        const { sql, what } = workloadSql(rnd);
        await cli.exec(sql);
        if (process.env.GC_TRACE) console.log(step, what, Math.round(performance.now() - t));
        if (step % 10 === 9) {
          const pos = await primary.sync();
          await replica.waitForTxid(pos.txid, 20_000);
          appDb.exec('BEGIN');
          appDb.prepare('SELECT count(*) FROM sqlite_master').get();
          const primaryBytes = appDb.serialize();
          appDb.exec('COMMIT');
          const replicaBytes = readFileSync(replica.replicaPath);
          expect(firstDifferentPage(primaryBytes, replicaBytes, 4096), `seed ${seed} step ${step}`).toBe(0);
          expect(replica.position().checksum).toBe(pos.checksum);
          checks++;
        }
      }
      expect(checks).toBe(12);
      expect(events.some((e) => e.type === 'wal-restart')).toBe(true);
      expect(events.filter((e) => e.type === 'resync')).toHaveLength(0); // continuity never lost
      expect((await replica.lag()).transactions).toBe(0);
      await replica.close();
      await primary.close();
      appDb.close();
      await cli.close();
    },
  );

  it.each(MODES)(
    'groups commits captured in one round into one message per group, txids counting commits (engine %s)',
    async (mode) => {
      const { dir, app, path, primary } = await startPrimaryOn('wal-group', mode, { pollIntervalMs: 50 });
      const base = (await primary.sync()).txid;
      // Another connection commits 300 small transactions in one go: the primary captures them in a round or
      // two and publishes far fewer messages.
      const other = openDatabase(path);
      const ins = other.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 300; i++) ins.run(`row ${i}`);
      const pos = await primary.sync();
      expect(pos.txid).toBe(base + 300);
      const jsm = await jetstreamManager(nats.nc);
      const info = await jsm.streams.info(walNames(platform, app).stream);
      expect(info.state.messages).toBeLessThan(100);
      const last = await jsm.streams.getMessage(walNames(platform, app).stream, { seq: info.state.last_seq });
      expect(Number(last?.header.get(WalHeader.Txs) || '1')).toBeGreaterThan(1);
      const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
      await replica.waitForTxid(pos.txid);
      expectSamePages(other, replica.replicaPath);
      // A snapshot lands exactly on a group end, also while commits keep coming.
      const snapDir = await makeTempDir('wal-group-snap');
      for (let i = 0; i < 50; i++) ins.run(`more ${i}`);
      const snap = await primary.snapshotTo(snapDir);
      expect(snap.position.checksum).toBe(formatChecksum(hashFile(snap.path).checksum));
      expect(snap.position.txid).toBeGreaterThan(pos.txid);
      other.close();
      await replica.close();
      await primary.close();
    },
  );

  it.each(MODES)(
    'checkpoints and snapshots while the app commits back to back on its own connection, the WAL staying bounded (engine %s)',
    async (mode) => {
      const checkpointFrames = 200;
      const { dir, app, path, primary } = await startPrimaryOn('wal-busy', mode, { checkpointFrames });
      let checkpoints = 0;
      primary.onEvent((e) => {
        if (e.type === 'checkpoint') checkpoints++;
      });
      const db = primary.db;
      const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
      const tx = db.transaction((n: number) => {
        for (let r = 0; r < 5; r++) ins.run(`value ${n}.${r}`.padEnd(100, '.'));
        const until = performance.now() + 0.3; // work inside the transaction
        while (performance.now() < until);
      });
      // The app holds the write lock nearly all the time and lets its event loop run every 20 commits,
      // the shape under which the engine cannot win the lock by waiting for it. ~2500 commits/s: well
      // within what the engine captures, so only the lock decides whether checkpoints happen.
      const snapDir = await makeTempDir('wal-busy-snap');
      let snapshot: Promise<{ path: string; position: { checksum: string } }> | undefined;
      let maxWalBytes = 0;
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < 1500) {
        for (let i = 0; i < 20; i++) tx(n++);
        if (n % 100 === 0) maxWalBytes = Math.max(maxWalBytes, statSync(`${path}-wal`).size);
        if (!snapshot && performance.now() - t0 > 500) snapshot = primary.snapshotTo(snapDir);
        await new Promise((r) => setImmediate(r));
      }
      const snap = await snapshot!;
      expect(snap.position.checksum).toBe(formatChecksum(hashFile(snap.path).checksum));
      // n commits of ~2 frames. Measured: n ≈ 4000 on a quiet machine, 14–34 checkpoints (also under CPU
      // load), the WAL peaking at ~380 frames (up to ~2900 when the worker was starved of CPU for a while); a
      // worker engine waiting for the lock itself instead got 1 checkpoint and a WAL of 8800 frames (≈ 2n:
      // everything since the start).
      expect(checkpoints).toBeGreaterThanOrEqual(5);
      expect(maxWalBytes / 4096).toBeLessThan(Math.max(10 * checkpointFrames, 1.5 * n));
      await expectReplicaMatches(dir, app, primary);
    },
  );

  it.each(MODES)(
    'an app holding the write lock across awaits: checkpoint() gives up without blocking, snapshotTo() needs no lock, nothing is lost (engine %s)',
    async (mode) => {
      const { dir, app, primary } = await startPrimaryOn('wal-held', mode, { busyTimeoutMs: 400 });
      const db = primary.db;
      const committed = (await primary.sync()).txid;
      db.exec('BEGIN IMMEDIATE');
      db.prepare('INSERT INTO t (v) VALUES (?)').run('inside');
      const t0 = performance.now();
      await primary.checkpoint(); // the lock is the app's: no checkpoint this time, and no deadlock
      expect(performance.now() - t0).toBeLessThan(2000);
      const snapDir = await makeTempDir('wal-held-snap');
      // A snapshot is a read transaction at a captured commit: the writer holding the lock does not stop it,
      // and it holds exactly what was committed (not the open transaction's row).
      const held = await primary.snapshotTo(snapDir);
      expect(held.position.txid).toBe(committed);
      expect(held.position.checksum).toBe(formatChecksum(hashFile(held.path).checksum));
      db.exec('COMMIT');
      const pos = await primary.sync();
      const snap = await primary.snapshotTo(snapDir); // lock free again
      expect(snap.position.txid).toBe(pos.txid);
      await expectReplicaMatches(dir, app, primary);
    },
  );

  it.each(MODES)(
    'captureNow() publishes a commit made on the connection directly without waiting for the poll (engine %s)',
    async (mode) => {
      const { primary } = await startPrimaryOn('wal-now', mode, {
        pollIntervalMs: 60_000,
        watchFiles: false,
      });
      const published: number[] = [];
      primary.onEvent((e) => {
        if (e.type === 'published') published.push(e.txid);
      });
      await primary.sync(); // the start-up round is done; the next poll is a minute away
      await new Promise((r) => setTimeout(r, 100));
      const base = primary.position().capturedTxid;
      primary.db.prepare('INSERT INTO t (v) VALUES (?)').run('direct');
      await new Promise((r) => setTimeout(r, 300));
      expect(published.filter((t) => t > base)).toEqual([]);
      primary.captureNow();
      await waitFor(() => published.some((t) => t > base), { timeoutMs: 5000 });
      await primary.close();
    },
  );

  it('commits made back to back, each followed by captureNow(), go out in one message (inline engine)', async () => {
    const { primary } = await startPrimaryOn('wal-burst', 'inline', {
      pollIntervalMs: 60_000,
      watchFiles: false,
    });
    const published: Array<{ txid: number; seq: number }> = [];
    primary.onEvent((e) => {
      if (e.type === 'published') published.push({ txid: e.txid, seq: e.seq });
    });
    const base = await primary.sync();
    const ins = primary.db.prepare('INSERT INTO t (v) VALUES (?)');
    for (let i = 0; i < 5; i++) {
      ins.run(`burst ${i}`);
      primary.captureNow();
    }
    const pos = await primary.sync();
    expect(pos.txid).toBe(base.txid + 5);
    // One message, one socket write: not the first commit alone and the other four in a second round.
    expect(published).toEqual([{ txid: base.txid + 5, seq: base.seq + 1 }]);
    await primary.close();
  });

  it.each(MODES)(
    'a commit by another process is captured at once through the file watch, with the polls minutes apart (engine %s)',
    async (mode) => {
      const { path, primary } = await startPrimaryOn('wal-watch', mode, {
        pollIntervalMs: 60_000,
        idlePollIntervalMs: 60_000,
      });
      await primary.sync();
      await new Promise((r) => setTimeout(r, 100));
      await expectExternalCommitCapturedAtOnce(path, primary);
      await primary.close();
    },
  );

  it.each(MODES)(
    'after a busy spell (the file watch dropped) an idle primary watches again: a later commit by another process is captured at once (engine %s)',
    async (mode) => {
      const { path, primary } = await startPrimaryOn('wal-rewatch', mode, {
        pollIntervalMs: 5,
        idlePollIntervalMs: 60_000,
      });
      await primary.sync();
      await busySpell(primary, 300);
      await primary.sync();
      await new Promise((r) => setTimeout(r, 200)); // idle: the watch is armed again, the next poll a minute away
      await expectExternalCommitCapturedAtOnce(path, primary);
      await primary.close();
    },
  );

  it('the file watch is dropped under load and held again once idle; none is left after close (inline engine)', async () => {
    // Counts the watchers the engine has open: fs.watch wrapped, and the wrapper made visible to ES imports.
    const open = new Set<FSWatcher>();
    const realWatch = fs.watch.bind(fs) as (...a: unknown[]) => FSWatcher;
    const spy = vi.spyOn(fs, 'watch').mockImplementation((...args: unknown[]) => {
      const w = realWatch(...args);
      open.add(w);
      const close = w.close.bind(w);
      w.close = () => {
        open.delete(w);
        close();
      };
      return w;
    });
    syncBuiltinESMExports();
    try {
      const { primary } = await startPrimaryOn('wal-unwatch', 'inline', {
        pollIntervalMs: 5,
        idlePollIntervalMs: 60_000,
      });
      await primary.sync();
      await waitFor(() => open.size === 1, { timeoutMs: 2000, message: 'watching while idle' });
      let unwatched = false;
      await busySpell(primary, 400, () => (unwatched ||= open.size === 0));
      expect(unwatched).toBe(true);
      await primary.sync();
      await waitFor(() => open.size === 1, { timeoutMs: 2000, message: 'watching again once idle' });
      await primary.close();
      expect(open.size).toBe(0);
    } finally {
      spy.mockRestore();
      syncBuiltinESMExports();
    }
  });

  it('sync() called while stop() runs never claims a commit its last round did not capture, and does not hang (inline engine)', async () => {
    const { primary } = await startPrimaryOn('wal-sync-stop', 'inline');
    const base = (await primary.sync()).txid;
    const ins = primary.db.prepare('INSERT INTO t (v) VALUES (?)');
    ins.run('before stop');
    const stopping = primary.stop(); // its last capture round has run by now (no round was in progress)
    ins.run('after the last round');
    const t0 = performance.now();
    const got: WalPosition | Error = await primary.sync().then(
      (p) => p,
      (e: unknown) => e as Error,
    );
    expect(performance.now() - t0).toBeLessThan(5000);
    if (got instanceof Error) expect(got).toBeInstanceOf(ClosedError);
    else expect(got.txid).toBeGreaterThanOrEqual(base + 2);
    // stop() checks the file after its last round, which may capture the later commit too.
    const r = await stopping;
    expect(r.acked.txid).toBeGreaterThanOrEqual(base + 1);
    expect(r.unreplicatedTransactions).toBe(0);
  });

  it.each(MODES)(
    'closed() of a primary and a replica: pending until close(), resolved after it (engine %s)',
    async (mode) => {
      const { dir, app, primary } = await startPrimaryOn('wal-closed', mode);
      const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
      const closed: string[] = [];
      void primary.closed().then(() => closed.push('primary'));
      void replica.closed().then(() => closed.push('replica'));
      await new Promise((r) => setTimeout(r, 20));
      expect(closed).toEqual([]);
      await replica.close();
      expect(closed).toEqual(['replica']);
      await primary.close();
      expect(closed).toEqual(['replica', 'primary']);
      await Promise.all([replica.close(), primary.close()]);
    },
  );

  it('refuses a database that is not in WAL mode and publishes nothing', async () => {
    const dir = await makeTempDir('wal-nowal');
    const app = nextApp();
    const path = join(dir, 'x.db');
    const db = openDatabase(path);
    db.exec('CREATE TABLE t (x)');
    db.close();
    const err = await createPrimary(nats.nc, { platform, app, path, epoch: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotWalModeError);
    expect((err as NotWalModeError).code).toBe('GC_SQLITE_NOT_WAL');
    const jsm = await jetstreamManager(nats.nc);
    const info = await jsm.streams.info(walNames(platform, app).stream).catch(() => undefined);
    expect(info?.state.messages ?? 0).toBe(0);
  });

  it('worker engine: refuses connection options that are not plain data, and reports a failed connection', async () => {
    const dir = await makeTempDir('wal-worker-bad');
    const path = join(dir, 'p.db');
    const bad = await createPrimary(nats.nc, {
      platform,
      app: nextApp(),
      path,
      epoch: 1,
      worker: { connect: { servers: nats.server.url, nats: { reconnectDelayHandler: () => 1 } } },
    }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TypeError);
    expect((bad as Error).message).toMatch(/plain data/);
    const unreachable = await createPrimary(nats.nc, {
      platform,
      app: nextApp(),
      path,
      epoch: 1,
      worker: { connect: { servers: 'nats://127.0.0.1:1', timeoutMs: 500 } },
    }).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(Error);
    expect((unreachable as GcError).code).toBe('GC_CONNECT_FAILED');
    const db = openDatabase(join(dir, 'rollback.db'));
    db.exec('CREATE TABLE t (x)');
    db.close();
    const notWal = await createPrimary(nats.nc, {
      platform,
      app: nextApp(),
      path: join(dir, 'rollback.db'),
      epoch: 1,
      ...engine('worker'),
    }).catch((e: unknown) => e);
    expect((notWal as GcError).code).toBe('GC_SQLITE_NOT_WAL');
  });

  it('refuses a replica directory owned by another app, changing nothing', async () => {
    const dir = await makeTempDir('wal-owner');
    const path = join(dir, 'r.db');
    const a = nextApp();
    const r = await createReplica(nats.nc, { platform, app: a, path });
    await r.close();
    const before = readFileSync(`${path}.replica.gc-position.json`, 'utf8');
    const err = await createReplica(nats.nc, { platform, app: nextApp(), path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongOwnerError);
    expect((err as WrongOwnerError).code).toBe(WalErrorCode.WrongOwner);
    expect(readFileSync(`${path}.replica.gc-position.json`, 'utf8')).toBe(before);
  });

  it.each(MODES)(
    'chunks transactions above max_payload and fences a deposed primary (engine %s)',
    async (mode) => {
      const dir = await makeTempDir('wal-fence');
      const app = nextApp();
      const path = join(dir, 'p.db');
      const p1 = await createPrimary(nats.nc, { platform, app, path, epoch: 1, ...engine(mode) });
      p1.db.exec(WORKLOAD_SCHEMA);
      await p1.write((db) => db.prepare('INSERT INTO t (b) VALUES (?)').run(Buffer.alloc(300_000, 7)));
      const acked = await p1.sync();
      const replica = await createReplica(nats.nc, { platform, app, path: join(dir, 'r.db') });
      await replica.waitForTxid(acked.txid);
      const jsm = await jetstreamManager(nats.nc);
      const info = await jsm.streams.info(walNames(platform, app).stream);
      expect(info.state.messages).toBeGreaterThan(acked.txid); // some transaction needed several chunks
      // Another node takes over with epoch 2 from the replica; p1 is refused on its next publish.
      const events: PrimaryEvent[] = [];
      p1.onEvent((e) => events.push(e));
      const { primary: p2, timings } = await promote(
        replica,
        { platform, app, path: join(dir, 'r.db') },
        nats.nc,
        {
          epoch: 2,
        },
      );
      // The phases add up to the total (each measured, none left out).
      const phases = timings.catchUpMs + timings.verifyMs + timings.moveMs + timings.startMs;
      expect(timings.totalMs).toBeGreaterThan(0);
      expect(Math.abs(timings.totalMs - phases)).toBeLessThan(5);
      // The new primary holds everything the old one had acknowledged.
      expect(p2.position().capturedTxid).toBeGreaterThanOrEqual(acked.txid);
      p1.db.prepare('INSERT INTO t (v) VALUES (?)').run('lost write');
      const refused = await p1.sync().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(NotLeaderError);
      expect(refused).toMatchObject({ code: WalErrorCode.NotLeader, epoch: 1 });
      expect(events.some((e) => e.type === 'not-leader')).toBe(true);
      await expect(p1.write(() => undefined)).rejects.toBeInstanceOf(NotLeaderError);
      // The deposed primary demotes: its unreplicated write is detected, set aside, never merged.
      const replicaEvents: ReplicaEvent[] = [];
      const stopped = await p1.stop();
      expect(stopped.deposed).toBe(true);
      expect(stopped.unreplicatedTransactions).toBe(1);
      const demoted = await demote(p1, nats.nc, { platform, app, path });
      expect(demoted.unreplicated?.code).toBe(WalErrorCode.UnreplicatedWrites);
      expect(existsSync(demoted.unreplicated!.savedPath)).toBe(true);
      demoted.replica.onEvent((e) => replicaEvents.push(e));
      await p2.write((db) => db.prepare('INSERT INTO t (v) VALUES (?)').run('new leader'));
      const pos2 = await p2.sync();
      await demoted.replica.waitForTxid(pos2.txid);
      const copy = openDatabase(demoted.replica.replicaPath, { readonly: true });
      const rows = copy.prepare('SELECT v FROM t WHERE v IS NOT NULL').all() as Array<{ v: string }>;
      copy.close();
      expect(rows.map((r) => r.v)).toEqual(['new leader']);
      await demoted.replica.close();
      await p2.close();
    },
  );
});

describe('unreplicated writes after a crash', () => {
  it('detects a former primary database whose state is in no replicated transaction', async () => {
    const dir = await makeTempDir('wal-unrep');
    const app = nextApp();
    const path = join(dir, 'p.db');
    const p = await createPrimary(nats.nc, { platform, app, path, epoch: 1 });
    p.db.exec(WORKLOAD_SCHEMA);
    await p.sync();
    await p.stop();
    // Written while no replicator ran: never in the stream.
    const db = openDatabase(path);
    db.prepare('INSERT INTO t (v) VALUES (?)').run('offline write');
    db.close();
    const events: ReplicaEvent[] = [];
    const r = await createReplica(nats.nc, { platform, app, path });
    r.onEvent((e) => events.push(e));
    await waitFor(() => r.position().txid >= 1);
    const saved = readdirUnreplicated(dir);
    expect(saved).toHaveLength(1);
    expect(existsSync(path)).toBe(false);
    await r.close();
  });
});

function readdirUnreplicated(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes('.unreplicated-'));
}

describe('R8: corrupted WAL messages', () => {
  it('refuses a flipped bit or a cut-short message, applies nothing bad, and re-bootstraps from a later snapshot', async () => {
    const dir = await makeTempDir('wal-r8');
    const src = nextApp();
    const path = join(dir, 'p.db');
    const p = await createPrimary(nats.nc, { platform, app: src, path, epoch: 1 });
    p.db.exec(WORKLOAD_SCHEMA);
    for (let i = 0; i < 30; i++)
      await p.write((db) => db.prepare('INSERT INTO t (v) VALUES (?)').run(`row ${i}`));
    const snapDir = await makeTempDir('wal-r8-snap');
    const snap = await p.snapshotTo(snapDir);
    for (let i = 0; i < 10; i++)
      await p.write((db) => db.prepare('INSERT INTO t (v) VALUES (?)').run(`late ${i}`));
    const final = await p.sync();
    await p.close();
    const jsm = await jetstreamManager(nats.nc);
    const js = (await import('@nats-io/jetstream')).jetstream(nats.nc);
    const from = walNames(platform, src);
    for (const damage of ['flip', 'truncate'] as const) {
      // A copy of the history with one message damaged, as another app's stream.
      const app = nextApp();
      const to = walNames(platform, app);
      await jsm.streams.add({ name: to.stream, subjects: [to.subject] });
      const badSeq = Math.floor(snap.position.seq / 2);
      for (let s = 1; s <= final.seq; s++) {
        const m = (await jsm.streams.getMessage(from.stream, { seq: s }))!;
        let data = Buffer.from(m.data);
        if (s === badSeq)
          data = damage === 'flip' ? ((data[10]! ^= 0x04), data) : data.subarray(0, data.length - 7);
        await js.publish(to.subject, data, { headers: m.header });
      }
      const store = await createSnapshotStore(nats.nc, { platform, app });
      const events: ReplicaEvent[] = [];
      const r = await createReplica(nats.nc, {
        platform,
        app,
        path: join(dir, `${app}.db`),
        snapshots: store,
        retryDelayMs: 50,
      });
      r.onEvent((e) => events.push(e));
      await waitFor(() => events.some((e) => e.type === 'refused'), {
        message: 'refusal of the damaged message',
      });
      const refused = events.find((e) => e.type === 'refused') as { error: GcError } | undefined;
      expect(refused?.error.code).toBe(WalErrorCode.CorruptMessage);
      // Nothing past the damaged message was applied, and what was applied is intact.
      expect(r.position().seq).toBeLessThan(badSeq);
      // With a snapshot after the damage, the replica re-bootstraps and catches up to the end.
      await store.put(snap.path, snap.position);
      await r.waitForTxid(final.txid, 20_000);
      expect(r.position().checksum).toBe(final.checksum);
      expect(formatChecksum(hashFile(r.replicaPath).checksum)).toBe(final.checksum);
      expect(events.some((e) => e.type === 'bootstrap' && e.from === 'snapshot')).toBe(true);
      await r.close();
    }
  });
});
