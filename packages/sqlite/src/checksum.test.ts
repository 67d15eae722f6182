import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '@gc/testkit';
import {
  databaseFileInfo,
  formatChecksum,
  hashFile,
  headerPageSize,
  lockPageNumber,
  pageHash,
  parseChecksum,
  PageHashes,
} from './checksum.js';
import { NotDatabaseError, SqliteErrorCode } from './errors.js';
import { openDatabase } from './sqlite.js';

describe('page checksum', () => {
  it('is order-independent, detects a swap of two pages, ignores the lock page and zero pages', () => {
    const a = Buffer.alloc(4096, 1);
    const b = Buffer.alloc(4096, 2);
    const h1 = new PageHashes();
    h1.set(1, pageHash(1, a));
    h1.set(2, pageHash(2, b));
    const h2 = new PageHashes();
    h2.set(2, pageHash(2, b));
    h2.set(1, pageHash(1, a));
    expect(h2.checksum).toBe(h1.checksum);
    const swapped = new PageHashes();
    swapped.set(1, pageHash(1, b));
    swapped.set(2, pageHash(2, a));
    expect(swapped.checksum).not.toBe(h1.checksum);
    expect(pageHash(lockPageNumber(4096), a)).toBe(0n);
    expect(pageHash(7, Buffer.alloc(4096))).toBe(0n);
    h1.resize(1);
    expect(h1.checksum).toBe(pageHash(1, a));
    expect(lockPageNumber(4096)).toBe(262145);
    expect(lockPageNumber(65536)).toBe(16385);
  });
});

describe('checksum wire form', () => {
  it('formats as 16 hex digits and parses back; malformed input is undefined', () => {
    expect(formatChecksum(0n)).toBe('0000000000000000');
    expect(formatChecksum(0xabcn)).toBe('0000000000000abc');
    expect(parseChecksum(formatChecksum(0x0123456789abcdefn))).toBe(0x0123456789abcdefn);
    expect(parseChecksum('0123')).toBeUndefined();
    expect(parseChecksum('0123456789ABCDEF')).toBeUndefined();
    expect(parseChecksum(undefined)).toBeUndefined();
  });
});

describe('database files', () => {
  it('hashFile gives the checksum of the pages SQLite wrote; databaseFileInfo reads the header', async () => {
    const dir = await makeTempDir('sqlite');
    const path = join(dir, 'a.db');
    const db = openDatabase(path);
    db.pragma('page_size = 1024');
    db.exec('CREATE TABLE t (v BLOB)');
    db.prepare('INSERT INTO t VALUES (randomblob(5000))').run();
    const pages = db.pragma('page_count', { simple: true }) as number;
    const serialized = db.serialize();
    db.close();
    const info = databaseFileInfo(path);
    expect(info).toEqual({ pageSizeBytes: 1024, pageCount: pages, sizeBytes: pages * 1024 });
    const expected = new PageHashes();
    for (let p = 1; p <= pages; p++) {
      expected.set(p, pageHash(p, serialized.subarray((p - 1) * 1024, p * 1024)));
    }
    const hashes = hashFile(path);
    expect(hashes.pageCount).toBe(pages);
    expect(formatChecksum(hashes.checksum)).toBe(formatChecksum(expected.checksum));
  });

  it('refuses a file that is not a database with NotDatabaseError', async () => {
    const dir = await makeTempDir('sqlite');
    const path = join(dir, 'not.db');
    writeFileSync(path, Buffer.alloc(4096, 7));
    expect(() => databaseFileInfo(path)).toThrow(NotDatabaseError);
    expect(() => headerPageSize(Buffer.alloc(100), path)).toThrow(/not an SQLite database/);
    try {
      hashFile(path);
      expect.unreachable();
    } catch (err) {
      expect((err as NotDatabaseError).code).toBe(SqliteErrorCode.NotDatabase);
      expect((err as NotDatabaseError).path).toBe(path);
    }
    writeFileSync(path, Buffer.alloc(0));
    expect(databaseFileInfo(path)).toEqual({ pageSizeBytes: 0, pageCount: 0, sizeBytes: 0 });
  });
});
