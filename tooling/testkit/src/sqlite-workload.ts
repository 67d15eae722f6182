import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

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

/** Schema the seeded SQLite workloads expect. */
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

/**
 * One step of a seeded SQLite workload as SQL for {@link SqliteCli}: inserts, updates, deletes, schema
 * changes, large blobs, VACUUM, checkpoints in every mode and `wal_autocheckpoint` changes (the mix of
 * `workloadStep` in @gc/wal's tests).
 */
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
