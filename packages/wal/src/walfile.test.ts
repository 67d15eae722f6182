import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, seededRandom } from '@gc/testkit';
import { openDatabase } from '@gc/sqlite';
import {
  parseWalHeader,
  readWal,
  WalReader,
  walChecksum,
  WAL_FRAME_HEADER_BYTES,
  WAL_HEADER_BYTES,
  WAL_MAGIC_BE,
} from './walfile.js';

function walDb(dir: string) {
  const path = join(dir, 'a.db');
  const db = openDatabase(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (x)');
  return { db, path };
}

/** Rewrites a little-endian-checksum WAL as a big-endian one (recomputing every checksum). */
function toBigEndian(wal: Buffer, pageSize: number): Buffer {
  const out = Buffer.from(wal);
  out.writeUInt32BE(WAL_MAGIC_BE, 0);
  let s = walChecksum(out.subarray(0, 24), true);
  out.writeUInt32BE(s[0], 24);
  out.writeUInt32BE(s[1], 28);
  const fb = WAL_FRAME_HEADER_BYTES + pageSize;
  for (let off = WAL_HEADER_BYTES; off + fb <= out.length; off += fb) {
    s = walChecksum(out.subarray(off, off + 8), true, s);
    s = walChecksum(out.subarray(off + 24, off + fb), true, s);
    out.writeUInt32BE(s[0], off + 16);
    out.writeUInt32BE(s[1], off + 20);
  }
  return out;
}

/** SQLite's WAL checksum as its documentation states it, on unsigned words (the reference for walChecksum). */
function referenceChecksum(data: Buffer, bigEndian: boolean, seed: [number, number]): [number, number] {
  let [s1, s2] = seed;
  for (let i = 0; i < data.length; i += 8) {
    const x0 = bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i);
    const x1 = bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4);
    s1 = (s1 + x0 + s2) % 2 ** 32;
    s2 = (s2 + x1 + s1) % 2 ** 32;
  }
  return [s1, s2];
}

describe('walChecksum', () => {
  it('equals the reference on random data and seeds (high bits set), both byte orders, aligned or not', () => {
    const rnd = seededRandom(7);
    for (let round = 0; round < 200; round++) {
      const bytes = 8 * (1 + Math.floor(rnd() * 600));
      const shift = Math.floor(rnd() * 4); // an unaligned view takes the DataView path
      const buf = Buffer.alloc(bytes + shift);
      for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
      const data = buf.subarray(shift);
      const seed: [number, number] = [Math.floor(rnd() * 2 ** 32), Math.floor(rnd() * 2 ** 32)];
      for (const bigEndian of [false, true])
        expect(walChecksum(data, bigEndian, seed), `round ${round}`).toEqual(
          referenceChecksum(data, bigEndian, seed),
        );
    }
  });
});

describe('WAL file format', () => {
  it('parses the header and groups frames into committed transactions, last copy of a page wins', async () => {
    const dir = await makeTempDir('walfile');
    const { db, path } = walDb(dir);
    db.prepare('INSERT INTO t VALUES (?)').run('a');
    db.transaction(() => {
      for (let i = 0; i < 50; i++) db.prepare('INSERT INTO t VALUES (?)').run(`row${i}`.repeat(50));
    })();
    const r = readWal(`${path}-wal`, undefined);
    expect(r.header?.pageSizeBytes).toBe(4096);
    expect(r.header?.bigEndian).toBe(false);
    expect(r.transactions.length).toBe(3); // create, insert, batch
    const last = r.transactions.at(-1)!;
    expect(last.dbSizePages).toBe(db.pragma('page_count', { simple: true }));
    // Incremental read from the cursor finds nothing new, then only the next commit.
    expect(readWal(`${path}-wal`, r.cursor).transactions).toHaveLength(0);
    db.prepare('INSERT INTO t VALUES (?)').run('b');
    expect(readWal(`${path}-wal`, r.cursor).transactions).toHaveLength(1);
    db.close();
  });

  it('accepts big-endian checksums (magic 0x377f0683) and rejects a flipped bit from that frame on', async () => {
    const dir = await makeTempDir('walfile');
    const { db, path } = walDb(dir);
    for (let i = 0; i < 5; i++) db.prepare('INSERT INTO t VALUES (?)').run(i);
    const wal = readFileSync(`${path}-wal`);
    const copy = join(dir, 'copy-wal');
    writeFileSync(copy, toBigEndian(wal, 4096));
    const be = readWal(copy, undefined);
    expect(be.header?.bigEndian).toBe(true);
    expect(be.transactions).toHaveLength(6);
    // Flip one bit inside the 4th frame's page: the log ends before it.
    const bad = toBigEndian(wal, 4096);
    const fb = WAL_FRAME_HEADER_BYTES + 4096;
    bad[WAL_HEADER_BYTES + 3 * fb + 100]! ^= 0x01;
    writeFileSync(copy, bad);
    const cut = readWal(copy, undefined);
    const framesBefore = cut.transactions.reduce((n, t) => n + t.frames, 0);
    expect(framesBefore).toBeLessThanOrEqual(3);
    // A bad header checksum: nothing is read.
    const badHeader = Buffer.from(wal);
    badHeader[17]! ^= 0xff;
    expect(parseWalHeader(badHeader)).toBeUndefined();
    db.close();
  });

  it('ignores stale frames with old salts after a restart and frames after the last commit', async () => {
    const dir = await makeTempDir('walfile');
    const { db, path } = walDb(dir);
    for (let i = 0; i < 20; i++) db.prepare('INSERT INTO t VALUES (?)').run('x'.repeat(500));
    const first = readWal(`${path}-wal`, undefined);
    db.pragma('wal_checkpoint(RESTART)');
    db.prepare('INSERT INTO t VALUES (?)').run('after restart');
    const r = readWal(`${path}-wal`, first.cursor);
    expect(r.newGeneration).toBe(true);
    expect(r.header!.salt1).toBe((first.header!.salt1 + 1) >>> 0);
    expect(r.header!.checkpointSeq).toBe(first.header!.checkpointSeq + 1);
    expect(r.transactions).toHaveLength(1); // the old generation's frames further on are not read
    // A copy cut in the middle of a frame: the partial frame is not a transaction.
    const wal = readFileSync(`${path}-wal`);
    const cutPath = join(dir, 'cut-wal');
    writeFileSync(cutPath, wal.subarray(0, WAL_HEADER_BYTES + WAL_FRAME_HEADER_BYTES + 100));
    expect(readWal(cutPath, undefined).transactions).toHaveLength(0);
    copyFileSync(`${path}-wal`, cutPath);
    db.close();
  });

  it('a reader kept open reads what a fresh one reads, commit after commit, across checkpoints and restarts', async () => {
    // The kept reader's fast path (frames right after the cursor, no look at size or header) must give
    // exactly what the full read gives, whatever the WAL went through since the last read.
    const dir = await makeTempDir('walfile');
    let rnd = 7;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (const seed of [1, 2, 3]) {
      rnd = seed;
      const path = join(dir, `s${seed}.db`);
      const db = openDatabase(path);
      db.pragma('journal_mode = WAL');
      db.pragma('wal_autocheckpoint = 0');
      db.exec('CREATE TABLE t (x)');
      const kept = new WalReader(`${path}-wal`);
      let cursor = kept.read(undefined).cursor;
      let fast = 0;
      for (let step = 0; step < 80; step++) {
        const r = next();
        if (r < 0.55) db.prepare('INSERT INTO t VALUES (?)').run('x'.repeat(Math.floor(next() * 9000)));
        else if (r < 0.7) db.exec('DELETE FROM t WHERE rowid % 3 = 0');
        else if (r < 0.8) db.pragma('wal_checkpoint(PASSIVE)');
        else if (r < 0.9) db.pragma('wal_checkpoint(RESTART)');
        else if (r < 0.95) db.pragma('wal_checkpoint(TRUNCATE)');
        else {
          db.exec('BEGIN');
          db.prepare('INSERT INTO t VALUES (?)').run('y'.repeat(20_000));
          db.exec('ROLLBACK');
        }
        const want = readWal(`${path}-wal`, cursor);
        const got = kept.read(cursor);
        expect(got.newGeneration).toBe(want.newGeneration);
        expect(got.header).toEqual(want.header);
        expect(got.cursor).toEqual(want.cursor);
        expect(got.transactions.map((t) => [t.dbSizePages, t.endOffset, t.frames, [...t.pages]])).toEqual(
          want.transactions.map((t) => [t.dbSizePages, t.endOffset, t.frames, [...t.pages]]),
        );
        if (!got.newGeneration && got.transactions.length > 0) fast++;
        cursor = got.cursor;
      }
      expect(fast).toBeGreaterThan(15);
      kept.close();
      db.close();
    }
  });
  it('pages handed out by one read keep their bytes through later reads (small reads share a buffer)', async () => {
    const dir = await makeTempDir('walfile-keep');
    const { db, path } = walDb(dir);
    const reader = new WalReader(`${path}-wal`);
    try {
      const insert = db.prepare('INSERT INTO t VALUES (?)');
      const kept: Array<[Buffer, Buffer]> = [];
      let cursor = reader.read(undefined).cursor;
      for (let i = 0; i < 50; i++) {
        insert.run(Buffer.alloc(300 + i * 37, i + 1));
        const r = reader.read(cursor);
        expect(r.transactions.length).toBe(1);
        for (const [, page] of r.transactions[0]!.pages) kept.push([page, Buffer.from(page)]);
        cursor = r.cursor;
      }
      // Every page still equals the copy taken when it was read.
      for (const [page, copy] of kept) expect(page.equals(copy)).toBe(true);
      // And what a fresh reader reads from the start is the same history.
      const all = readWal(`${path}-wal`, undefined).transactions;
      expect(all.length).toBeGreaterThanOrEqual(50);
    } finally {
      reader.close();
      db.close();
    }
  });
});
