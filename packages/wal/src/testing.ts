import { readFileSync } from 'node:fs';
import type { SqliteDatabase } from '@gc/sqlite';

/** Seeded PRNG (mulberry32), the sqlite3 CLI writer and the workload's schema live in @gc/testkit. */
export { SqliteCli, WORKLOAD_SCHEMA, firstDifferentPage, seededRandom, workloadSql } from '@gc/testkit';

/** The logical bytes of a database as its connection sees them now (pages 1..n). */
export function logicalBytes(db: SqliteDatabase): Buffer {
  return db.serialize();
}

/** Reads a replica file. */
export function fileBytes(path: string): Buffer {
  return readFileSync(path);
}

/**
 * One step of a randomized workload: inserts, updates, deletes, schema changes, large blobs, VACUUM,
 * and checkpoints in every mode (the mix of `workloadSql` in @gc/testkit, on a connection of this process).
 * Returns what it did.
 */
export function workloadStep(db: SqliteDatabase, rnd: () => number, opts: { vacuum?: boolean } = {}): string {
  const r = rnd();
  const blob = (n: number) => Buffer.alloc(n, Math.floor(rnd() * 256));
  if (r < 0.35) {
    const n = 1 + Math.floor(rnd() * 20);
    const ins = db.prepare('INSERT INTO t (k, v, b) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < n; i++)
        ins.run(Math.floor(rnd() * 1e6), `v${rnd()}`, rnd() < 0.1 ? blob(Math.floor(rnd() * 20000)) : null);
    })();
    return `insert ${n}`;
  }
  if (r < 0.5) {
    db.prepare('UPDATE t SET v = ? WHERE id % ? = 0').run(`u${rnd()}`, 2 + Math.floor(rnd() * 10));
    return 'update';
  }
  if (r < 0.6) {
    db.prepare('DELETE FROM t WHERE id % ? = 0').run(3 + Math.floor(rnd() * 10));
    return 'delete';
  }
  if (r < 0.65) {
    db.prepare('INSERT INTO t (k, v, b) VALUES (?, ?, ?)').run(
      1,
      'big',
      blob(100_000 + Math.floor(rnd() * 400_000)),
    );
    return 'large blob';
  }
  if (r < 0.7) {
    const name = `s${Math.floor(rnd() * 5)}`;
    if (rnd() < 0.5)
      db.exec(
        `CREATE TABLE IF NOT EXISTS ${name} (x INTEGER PRIMARY KEY, y TEXT); INSERT INTO ${name} (y) VALUES ('${name}')`,
      );
    else db.exec(`DROP TABLE IF EXISTS ${name}`);
    return 'schema';
  }
  if (r < 0.73 && opts.vacuum !== false) {
    db.exec('VACUUM');
    return 'vacuum';
  }
  if (r < 0.85) {
    const modes = ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'];
    const mode = modes[Math.floor(rnd() * modes.length)]!;
    db.pragma(`wal_checkpoint(${mode})`);
    return `checkpoint ${mode}`;
  }
  if (r < 0.9) {
    db.pragma(`wal_autocheckpoint = ${[0, 1, 10, 1000][Math.floor(rnd() * 4)]}`);
    return 'autocheckpoint';
  }
  db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run(0, 'single');
  return 'single insert';
}
