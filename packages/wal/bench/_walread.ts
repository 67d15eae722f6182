// Diagnostic: cost of one WalReader.read after a one-row commit (the capture's per-commit read).
import { join } from 'node:path';
import { openDatabase } from '@gc/sqlite';
import { makeTempDir } from '@gc/testkit';
import { WalReader, walChecksum } from '../src/walfile.js';
import { median, round } from './_util.js';

const dir = await makeTempDir('walread');
const path = join(dir, 'a.db');
const db = openDatabase(path);
db.pragma('journal_mode = WAL');
db.pragma('wal_autocheckpoint = 0');
db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
const r = new WalReader(`${path}-wal`);
let cur = r.read(undefined).cursor;
const times: number[] = [];
for (let i = 0; i < 5000; i++) {
  ins.run('x'.repeat(100));
  const t0 = performance.now();
  const res = r.read(cur);
  times.push(performance.now() - t0);
  cur = res.cursor;
}
console.log('read p50 us', round(median(times.slice(1000)) * 1000));
const page = Buffer.alloc(4096, 7);
const t1 = performance.now();
for (let i = 0; i < 100000; i++) walChecksum(page, false, [1, 2]);
console.log('checksum 4KiB us', round(((performance.now() - t1) / 100000) * 1000));
