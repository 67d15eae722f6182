import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { SqliteDatabase } from '@gc/sqlite';

/** Seeded PRNG (mulberry32): same seed, same sequence. For tests and benches. */
export { seededRandom } from '@gc/testkit';

/** The logical bytes of a database as its connection sees them now (pages 1..n). */
export function logicalBytes(db: SqliteDatabase): Buffer {
  return db.serialize();
}

/** First page number where two database images differ, or 0 when identical. */
export function firstDifferentPage(a: Buffer, b: Buffer, pageSize: number): number {
  const n = Math.max(a.length, b.length) / pageSize;
  for (let p = 1; p <= n; p++) {
    const x = a.subarray((p - 1) * pageSize, p * pageSize);
    const y = b.subarray((p - 1) * pageSize, p * pageSize);
    if (Buffer.compare(x, y) !== 0) return p;
  }
  return 0;
}

/** Reads a replica file. */
export function fileBytes(path: string): Buffer {
  return readFileSync(path);
}

/**
 * One step of a randomized workload: inserts, updates, deletes, schema changes, large blobs, VACUUM,
 * and checkpoints in every mode. Returns what it did.
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

/** Schema the workload expects. */
export const WORKLOAD_SCHEMA =
  'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k INTEGER, v TEXT, b BLOB); CREATE INDEX IF NOT EXISTS t_k ON t(k)';

/**
 * The system `sqlite3` CLI as "another program" writing the database: a persistent process fed SQL
 * on stdin, so its locks, busy handler and checkpoints are independent of this process's event loop.
 */
export class SqliteCli {
  readonly #proc: ChildProcessWithoutNullStreams;
  #out = '';
  #err = '';
  #mark = 0;

  constructor(path: string) {
    this.#proc = spawn('sqlite3', ['-batch', path], { stdio: 'pipe' });
    this.#proc.stdout.on('data', (d: Buffer) => (this.#out += d.toString()));
    this.#proc.stderr.on('data', (d: Buffer) => (this.#err += d.toString()));
    this.#proc.stdin.write('.timeout 10000\n');
  }

  /** Runs SQL and resolves when the CLI has finished it (rejects on an error message). */
  async exec(sql: string, timeoutMs = 30_000): Promise<string> {
    const mark = `__mark_${++this.#mark}__`;
    const start = this.#out.length;
    this.#proc.stdin.write(`${sql}\nSELECT '${mark}';\n`);
    const deadline = Date.now() + timeoutMs;
    while (!this.#out.includes(mark, start)) {
      if (this.#err) throw new Error(`sqlite3: ${this.#err}`);
      if (Date.now() > deadline) throw new Error(`sqlite3 did not finish ${sql.slice(0, 80)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return this.#out.slice(start, this.#out.indexOf(mark, start));
  }

  /** Ends the CLI (it checkpoints only if it is the last connection). */
  async close(): Promise<void> {
    this.#proc.stdin.end('.quit\n');
    await new Promise((r) => this.#proc.once('exit', r));
  }
}

/** One step of the seeded workload as SQL for {@link SqliteCli} (same mix as {@link workloadStep}). */
export function workloadSql(rnd: () => number): { sql: string; what: string } {
  const r = rnd();
  const int = (n: number) => Math.floor(rnd() * n);
  if (r < 0.35) {
    const n = 1 + int(20);
    const rows = Array.from(
      { length: n },
      () => `(${int(1e6)}, 'v${int(1e9)}', ${rnd() < 0.1 ? `randomblob(${int(20000)})` : 'NULL'})`,
    );
    return { sql: `INSERT INTO t (k, v, b) VALUES ${rows.join(',')};`, what: `insert ${n}` };
  }
  if (r < 0.5)
    return { sql: `UPDATE t SET v = 'u${int(1e9)}' WHERE id % ${2 + int(10)} = 0;`, what: 'update' };
  if (r < 0.6) return { sql: `DELETE FROM t WHERE id % ${3 + int(10)} = 0;`, what: 'delete' };
  if (r < 0.65)
    return {
      sql: `INSERT INTO t (k, v, b) VALUES (1, 'big', randomblob(${100_000 + int(400_000)}));`,
      what: 'large blob',
    };
  if (r < 0.7) {
    const name = `s${int(5)}`;
    return rnd() < 0.5
      ? {
          sql: `CREATE TABLE IF NOT EXISTS ${name} (x INTEGER PRIMARY KEY, y TEXT); INSERT INTO ${name} (y) VALUES ('${name}');`,
          what: 'schema',
        }
      : { sql: `DROP TABLE IF EXISTS ${name};`, what: 'schema' };
  }
  if (r < 0.73) return { sql: 'VACUUM;', what: 'vacuum' };
  if (r < 0.85) {
    const mode = ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'][int(4)]!;
    return { sql: `PRAGMA wal_checkpoint(${mode});`, what: `checkpoint ${mode}` };
  }
  if (r < 0.9)
    return { sql: `PRAGMA wal_autocheckpoint = ${[0, 1, 10, 1000][int(4)]};`, what: 'autocheckpoint' };
  return { sql: "INSERT INTO t (k, v) VALUES (0, 'single');", what: 'single insert' };
}
