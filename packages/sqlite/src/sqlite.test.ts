import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '@gc/testkit';
import { IntegrityCheckError, NotWalModeError, SqliteDriverError, SqliteErrorCode } from './errors.js';
import {
  assertIntegrity,
  checkIntegrity,
  openDatabase,
  resetSqliteDriverForTests,
  sqliteDriver,
} from './sqlite.js';

const saved = { binding: process.env.GC_SQLITE_NATIVE_BINDING, driver: process.env.GC_SQLITE_DRIVER };
afterEach(() => {
  for (const [key, value] of [
    ['GC_SQLITE_NATIVE_BINDING', saved.binding],
    ['GC_SQLITE_DRIVER', saved.driver],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  resetSqliteDriverForTests();
});

const napi = Number(process.versions.napi ?? 0);

describe('sqliteDriver', () => {
  it('chooses better-sqlite3 13 (Node-API) on Node-API >= 10 and 12 below, and says why', () => {
    delete process.env.GC_SQLITE_DRIVER;
    delete process.env.GC_SQLITE_NATIVE_BINDING;
    resetSqliteDriverForTests();
    const info = sqliteDriver();
    if (napi >= 10) {
      expect(info).toMatchObject({ name: 'better-sqlite3-napi', reason: `Node-API ${napi} (>= 10)` });
      expect(info.version).toMatch(/^13\./);
    } else {
      expect(info).toMatchObject({ name: 'better-sqlite3', reason: `Node-API ${napi} (< 10)` });
      expect(info.version).toMatch(/^12\./);
    }
    const db = openDatabase(':memory:');
    expect(db.prepare('SELECT 1 + 1 AS v').get()).toEqual({ v: 2 });
    db.close();
  });

  it('GC_SQLITE_DRIVER forces a driver; an unknown one, or 13 on Node-API < 10, is a clear error', () => {
    process.env.GC_SQLITE_DRIVER = 'sqlite4';
    resetSqliteDriverForTests();
    expect(() => openDatabase(':memory:')).toThrow(SqliteDriverError);
    expect(() => sqliteDriver()).toThrow(/GC_SQLITE_DRIVER=sqlite4 is not a driver gc knows/);
    process.env.GC_SQLITE_DRIVER = 'better-sqlite3-napi';
    if (napi < 10) {
      expect(() => sqliteDriver()).toThrow(/needs Node-API 10; Node v[\d.]+ has \d+/);
    } else {
      expect(sqliteDriver()).toMatchObject({ name: 'better-sqlite3-napi', reason: 'GC_SQLITE_DRIVER' });
    }
  });
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
    resetSqliteDriverForTests();
    expect(sqliteDriver().name).toBe('better-sqlite3');
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
