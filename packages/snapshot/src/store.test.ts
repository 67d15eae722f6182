import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager, jetstream } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock, silentLogger } from '@gc/core';
import { makeTempDir, ServerFixture, waitFor } from '@gc/testkit';
import { formatChecksum, hashFile, openDatabase } from '@gc/sqlite';
import { createSnapshotStore } from './store.js';
import { createSnapshotter } from './snapshotter.js';
import { SnapshotCorruptError, SnapshotErrorCode } from './errors.js';
import type { SnapshotPosition, SnapshotProgress } from './types.js';

let n = 0;
const nats = new ServerFixture();
beforeAll(() => nats.start());
afterAll(() => nats.close());

/** A WAL-mode database file, checkpointed and closed, with its position. */
async function makeDb(rows: number): Promise<{ path: string; position: SnapshotPosition }> {
  const dir = await makeTempDir('snap');
  const path = join(dir, 'src.db');
  const db = openDatabase(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (randomblob(?))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(200 + (i % 3000));
  })();
  db.close();
  const h = hashFile(path);
  return {
    path,
    position: {
      txid: rows,
      seq: rows,
      epoch: 1,
      checksum: formatChecksum(h.checksum),
      pageSizeBytes: 4096,
      pageCount: h.pageCount,
    },
  };
}

describe('snapshot store', () => {
  it('uploads and restores byte-identically with progress, verified by checksum and integrity_check', async () => {
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app: `a${++n}` });
    const { path, position } = await makeDb(2000);
    const progress: SnapshotProgress[] = [];
    const info = await store.put(path, position, { onProgress: (p) => progress.push(p) });
    expect(info.txid).toBe(position.txid);
    expect(info.checksum).toBe(position.checksum);
    expect(progress.at(-1)!.doneBytes).toBe(info.sizeBytes);
    const target = join(await makeTempDir('snap-restore'), 'r.db');
    const restoreProgress: SnapshotProgress[] = [];
    await store.restore(target, { onProgress: (p) => restoreProgress.push(p) });
    expect(readFileSync(target).equals(readFileSync(path))).toBe(true);
    expect(restoreProgress.some((p) => p.phase === 'verify')).toBe(true);
  });

  it('refuses to store a file whose checksum is not the claimed one', async () => {
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app: `a${++n}` });
    const { path, position } = await makeDb(100);
    const err = await store.put(path, { ...position, checksum: '0000000000000001' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotCorruptError);
    expect(await store.list()).toHaveLength(0);
  });

  it('R8: a snapshot chunk with a flipped bit or cut short is refused; restore falls back to an older one; nothing half-written is left', async () => {
    const app = `a${++n}`;
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app, chunkSizeBytes: 64 * 1024 });
    const old = await makeDb(300);
    await store.put(old.path, { ...old.position, txid: 1, seq: 1 });
    const cur = await makeDb(3000);
    const info = await store.put(cur.path, { ...cur.position, txid: 2, seq: 2 });
    const jsm = await jetstreamManager(nats.nc);
    const stream = `OBJ_st_${app}_snapshots`;
    const js = jetstream(nats.nc);
    for (const damage of ['flip', 'truncate'] as const) {
      // Rewrite the newest snapshot's chunks with one damaged.
      const objInfo = (await jsm.streams.getMessage(stream, {
        last_by_subj: `$O.st_${app}_snapshots.M.${Buffer.from(info.name).toString('base64url')}`,
      }))!;
      const nuid = (JSON.parse(new TextDecoder().decode(objInfo.data)) as { nuid: string }).nuid;
      const subj = `$O.st_${app}_snapshots.C.${nuid}`;
      const chunks: Uint8Array[] = [];
      const si = await jsm.streams.info(stream);
      for (let s = si.state.first_seq; s <= si.state.last_seq; s++) {
        const m = await jsm.streams.getMessage(stream, { seq: s }).catch(() => null);
        if (m && m.subject === subj) chunks.push(m.data);
      }
      expect(chunks.length).toBeGreaterThan(2);
      await jsm.streams.purge(stream, { filter: subj });
      chunks.forEach((c, i) => {
        if (i !== 1) return;
        const d = Buffer.from(c);
        if (damage === 'flip') d[100]! ^= 0x10;
        chunks[i] = damage === 'flip' ? d : d.subarray(0, d.length - 1000);
      });
      for (const c of chunks) await js.publish(subj, c, { headers: headers() });
      const dir = await makeTempDir('snap-r8');
      const target = join(dir, 'r.db');
      const events: string[] = [];
      const restored = await store.restore(target, { onProgress: (p) => events.push(p.phase) });
      expect(restored.txid).toBe(1); // the damaged newest one was refused
      expect(readFileSync(target).equals(readFileSync(old.path))).toBe(true);
      expect(readdirSync(dir)).toEqual(['r.db']); // no temp file left behind
      const direct = await store.restore(join(dir, 'x.db'), { name: info.name }).catch((e: unknown) => e);
      expect((direct as SnapshotCorruptError).code).toBe(SnapshotErrorCode.Corrupt);
      expect(existsSync(join(dir, 'x.db'))).toBe(false);
    }
  });

  it('skips a scheduled snapshot while nothing was committed since the last one (currentTxid)', async () => {
    const app = `a${++n}`;
    const clock = new FakeClock(0, Date.UTC(2026, 0, 1));
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app }, clock);
    const { path, position } = await makeDb(5);
    let now = 7;
    let taken = 0;
    const s = createSnapshotter(
      nats.nc,
      store,
      async (dir) => {
        taken++;
        const copy = join(dir, 'c.db');
        writeFileSync(copy, readFileSync(path));
        return { path: copy, position: { ...position, txid: now, seq: now } };
      },
      { platform: 'st', app, intervalMs: 1000, trimStream: false, currentTxid: () => now, clock },
    );
    const tick = async () => {
      await clock.advance(1000);
      // the scheduled snapshot runs on real I/O: wait for it to land (or not)
      await new Promise((r) => setTimeout(r, 300));
    };
    await tick();
    await waitFor(() => taken === 1, { message: 'first scheduled snapshot' });
    await waitFor(async () => (await store.list()).length === 1, { message: 'stored' });
    await tick();
    await tick();
    expect(taken).toBe(1); // idle: nothing new to snapshot
    now = 9;
    await tick();
    await waitFor(() => taken === 2, { message: 'a snapshot after a commit' });
    await s.close();
  });

  it('keeps snapshots by count and age (the newest always) and trims the WAL stream below the oldest kept', async () => {
    const app = `a${++n}`;
    const clock = new FakeClock(0, Date.UTC(2026, 0, 1));
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app }, clock);
    const jsm = await jetstreamManager(nats.nc);
    const stream = `st_${app}_wal`;
    await jsm.streams.add({ name: stream, subjects: [`${stream}.tx`] });
    const js = jetstream(nats.nc);
    for (let i = 0; i < 20; i++) await js.publish(`${stream}.tx`, new Uint8Array(1));
    const { path, position } = await makeDb(50);
    let txid = 0;
    const s = createSnapshotter(
      nats.nc,
      store,
      async (dir) => {
        txid += 4;
        const copy = join(dir, 'c.db');
        writeFileSync(copy, readFileSync(path));
        return { path: copy, position: { ...position, txid, seq: txid } };
      },
      { platform: 'st', app, intervalMs: 0, retention: { keepCount: 2, maxAgeMs: 60_000 }, clock },
    );
    await s.snapshotNow();
    await s.snapshotNow();
    await s.snapshotNow();
    expect((await store.list()).map((x) => x.txid)).toEqual([8, 12]);
    expect((await jsm.streams.info(stream)).state.first_seq).toBe(9);
    await clock.advance(120_000);
    await s.snapshotNow();
    expect((await store.list()).map((x) => x.txid)).toEqual([16]);
    expect((await jsm.streams.info(stream)).state.first_seq).toBe(17);
    await s.close();
    await s.close();
  });

  it('an event listener that throws is logged; the snapshot is kept, and prune and trim still run', async () => {
    const app = `a${++n}`;
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app });
    const jsm = await jetstreamManager(nats.nc);
    const stream = `st_${app}_wal`;
    await jsm.streams.add({ name: stream, subjects: [`${stream}.tx`] });
    const js = jetstream(nats.nc);
    for (let i = 0; i < 10; i++) await js.publish(`${stream}.tx`, new Uint8Array(1));
    const { path, position } = await makeDb(5);
    let txid = 0;
    const logged: string[] = [];
    const logger = { ...silentLogger, error: (msg: string) => void logged.push(msg) };
    const s = createSnapshotter(
      nats.nc,
      store,
      async (dir) => {
        txid += 4;
        const copy = join(dir, 'c.db');
        writeFileSync(copy, readFileSync(path));
        return { path: copy, position: { ...position, txid, seq: txid } };
      },
      {
        platform: 'st',
        app,
        intervalMs: 0,
        retention: { keepCount: 1, maxAgeMs: 60_000 },
        logger,
        onEvent: () => {
          throw new Error('listener bug');
        },
      },
    );
    await s.snapshotNow();
    expect((await s.snapshotNow()).txid).toBe(8);
    expect((await store.list()).map((x) => x.txid)).toEqual([8]); // pruned despite the throwing listener
    expect((await jsm.streams.info(stream)).state.first_seq).toBe(9); // and trimmed
    expect(logged).toContain('snapshotter event listener threw');
    await s.close();
  });

  it('closed() resolves once close() has waited for the snapshot in progress', async () => {
    const app = `a${++n}`;
    const store = await createSnapshotStore(nats.nc, { platform: 'st', app });
    const { path, position } = await makeDb(5);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const s = createSnapshotter(
      nats.nc,
      store,
      async (dir) => {
        await held;
        const copy = join(dir, 'c.db');
        writeFileSync(copy, readFileSync(path));
        return { path: copy, position };
      },
      { platform: 'st', app, intervalMs: 0, trimStream: false },
    );
    let closed = false;
    void s.closed().then(() => (closed = true));
    const taking = s.snapshotNow();
    const closing = s.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false); // the snapshot in progress holds the close
    release();
    await closing;
    expect(closed).toBe(true);
    expect((await taking).txid).toBe(5);
    await s.close();
  });
});
