import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '@gc/testkit';
import { IntegrityCheckError, NotWalModeError, SqliteErrorCode } from './errors.js';
import { assertIntegrity, checkIntegrity, openDatabase } from './sqlite.js';

const saved = process.env.GC_SQLITE_NATIVE_BINDING;
afterEach(() => {
  if (saved === undefined) delete process.env.GC_SQLITE_NATIVE_BINDING;
  else process.env.GC_SQLITE_NATIVE_BINDING = saved;
});

describe('openDatabase', () => {
  it('opens with better-sqlite3 options; a nativeBinding from GC_SQLITE_NATIVE_BINDING is used', async () => {
    const dir = await makeTempDir('sqlite');
    const path = join(dir, 'a.db');
    expect(() => openDatabase(path, { fileMustExist: true })).toThrow();
    const db = openDatabase(path);
    expect(db.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
    db.close();
    process.env.GC_SQLITE_NATIVE_BINDING = join(dir, 'no-such-addon.node');
    expect(() => openDatabase(path)).toThrow(/no-such-addon/);
  });
});

describe('integrity', () => {
  it('checkIntegrity passes a sound database and throws IntegrityCheckError with the problems otherwise', async () => {
    const dir = await makeTempDir('sqlite');
    const path = join(dir, 'a.db');
    const db = openDatabase(path);
    db.exec('CREATE TABLE t (v INTEGER CHECK (v > 0))');
    db.prepare('INSERT INTO t VALUES (1)').run();
    assertIntegrity(db, path);
    db.close();
    checkIntegrity(path);
    // A row that breaks its CHECK constraint is one thing integrity_check reports (deterministically).
    const bad = openDatabase(path);
    bad.pragma('ignore_check_constraints = ON');
    bad.prepare('INSERT INTO t VALUES (-1)').run();
    bad.close();
    try {
      checkIntegrity(path);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IntegrityCheckError);
      expect((err as IntegrityCheckError).code).toBe(SqliteErrorCode.IntegrityCheckFailed);
      expect((err as IntegrityCheckError).problems).toEqual(['CHECK constraint failed in t']);
      expect((err as Error).message).toContain(path);
    }
  });

  it('NotWalModeError says what to run', () => {
    const e = new NotWalModeError('/data/a.db', 'delete');
    expect(e.code).toBe('GC_SQLITE_NOT_WAL');
    expect(e.message).toMatch(/PRAGMA journal_mode=WAL/);
  });
});
