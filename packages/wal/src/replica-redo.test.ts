// A replica that crashed between writing pages and recording its position restarts with its file ahead of
// that position — any mix of the pages of the transactions after it, the last ones perhaps torn — and redoes
// those transactions from the stream, without a bootstrap. Crash states are built exactly: the file at the
// recorded position (P) and at the last applied transaction (M) are mixed page by page, seeded.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, ServerFixture } from '@gc/testkit';
import { openDatabase } from '@gc/sqlite';
import { createPrimary } from './primary.js';
import { createReplica } from './replica.js';
import type { ReplicaEvent } from './types.js';
import { seededRandom, workloadStep, WORKLOAD_SCHEMA } from './testing.js';

const PAGE = 4096;
const platform = 'wredo';
let appSeq = 0;

const nats = new ServerFixture({ server: { maxPayload: 64 * 1024 } });
beforeAll(() => nats.start());
afterAll(() => nats.close());

/** A replica's file and position file after it caught up with `txid` and closed. */
async function replicaAt(app: string, path: string, txid: number) {
  const ev: ReplicaEvent[] = [];
  const replica = await createReplica(nats.nc, { platform, app, path, onEvent: (e) => ev.push(e) });
  await replica.waitForTxid(txid);
  await replica.close();
  // Closing records the position durably (it did not after a bootstrap: the flush after it was a no-op).
  if (ev.some((e) => e.type === 'applied'))
    expect(ev).toContainEqual(expect.objectContaining({ type: 'durable', txid }));
  expect(JSON.parse(readFileSync(`${replica.replicaPath}.gc-position.json`, 'utf8'))).toMatchObject({ txid });
  return {
    file: readFileSync(replica.replicaPath),
    position: readFileSync(`${replica.replicaPath}.gc-position.json`),
    replicaPath: replica.replicaPath,
  };
}

type Damage = 'crash' | 'foreign';

/**
 * The file a crash after P could leave: every page that differs between P and M is P's, M's, or torn
 * (M's first half); the length is P's or M's. `foreign` also changes a page no transaction after P wrote.
 */
function crashState(
  p: Buffer,
  m: Buffer,
  rnd: () => number,
  damage: Damage,
): { bytes: Buffer; mixed: number } {
  const len = rnd() < 0.5 ? p.length : m.length;
  const out = Buffer.alloc(Math.max(p.length, m.length));
  p.copy(out);
  let mixed = 0;
  const same: number[] = [];
  for (let off = 0; off < out.length; off += PAGE) {
    const pp = p.subarray(off, off + PAGE);
    const mp = m.subarray(off, off + PAGE);
    if (pp.equals(mp)) {
      if (off > 0 && off + PAGE <= len) same.push(off);
      continue;
    }
    const r = rnd();
    if (r < 1 / 3) continue; // not written before the crash
    mixed++;
    if (r < 2 / 3) mp.copy(out, off);
    else mp.subarray(0, PAGE / 2).copy(out, off); // torn: the second half is still P's (or empty)
  }
  if (damage === 'foreign' && same.length > 0) {
    const off = same[Math.floor(rnd() * same.length)]!;
    out[off + 100] = out[off + 100]! ^ 0xff;
  }
  return { bytes: out.subarray(0, len), mixed };
}

async function run(seed: number, damage: Damage) {
  const rnd = seededRandom(seed);
  const dir = await makeTempDir('wal-redo');
  const app = `redo${++appSeq}`;
  const path = join(dir, 'p.db');
  const init = openDatabase(path);
  init.pragma('journal_mode = WAL');
  init.exec(WORKLOAD_SCHEMA);
  init.close();
  const primary = await createPrimary(nats.nc, { platform, app, path, epoch: 1 });
  // A FULL/RESTART/TRUNCATE checkpoint on the primary's own connection waits for the capture's read pin
  // until busy_timeout (see the README's failure model): give up at once instead of after 5 s.
  primary.db.pragma('busy_timeout = 20');
  for (let i = 0, n = 3 + Math.floor(rnd() * 10); i < n; i++) workloadStep(primary.db, rnd);
  const atP = await replicaAt(app, join(dir, 'r.db'), (await primary.sync()).txid);
  for (let i = 0, n = 1 + Math.floor(rnd() * 12); i < n; i++)
    workloadStep(primary.db, rnd, { vacuum: rnd() < 0.3 });
  const last = await primary.sync();
  const atM = await replicaAt(app, join(dir, 'r.db'), last.txid);

  const crash = crashState(atP.file, atM.file, rnd, damage);
  writeFileSync(atP.replicaPath, crash.bytes);
  writeFileSync(`${atP.replicaPath}.gc-position.json`, atP.position);

  const events: ReplicaEvent[] = [];
  const replica = await createReplica(nats.nc, {
    platform,
    app,
    path: join(dir, 'r.db'),
    onEvent: (e) => events.push(e),
  });
  await replica.waitForTxid(last.txid, 10_000).catch((err: unknown) => {
    throw new Error(`seed ${seed}: ${String(err)}; events ${JSON.stringify(events.slice(0, 6))}`);
  });
  await replica.close();
  await primary.close();
  // Whatever happened, the copy ends as the primary's state.
  expect(readFileSync(atP.replicaPath).equals(atM.file), `seed ${seed}`).toBe(true);
  // Pages past the position's size do not count (the next transaction truncates them).
  const unchanged = crash.bytes.subarray(0, atP.file.length).equals(atP.file);
  return { events, mixed: crash.mixed, unchanged };
}

describe('a replica redoes from the stream what a crash interrupted', () => {
  it('any mix of the pages written after its recorded position: resumed from its own copy, nothing refused, over 100 seeds', async () => {
    let redone = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const { events, unchanged } = await run(seed, 'crash');
      const start = events.find((e) => e.type === 'bootstrap');
      expect(start, `seed ${seed}: ${JSON.stringify(events.slice(0, 3))}`).toMatchObject({ from: 'local' });
      expect(events.filter((e) => e.type === 'refused' || e.type === 'error')).toEqual([]);
      if (!unchanged) {
        redone++;
        expect((start as { reason?: string }).reason, `seed ${seed}`).toMatch(/^redid \d+ transactions/);
      }
    }
    expect(redone).toBeGreaterThanOrEqual(60); // most seeds really left a file ahead of its position
  }, 240_000);

  it('a page changed by something else is never taken for a crash: refused, bootstrapped, equal again', async () => {
    let refused = 0;
    for (let seed = 101; seed <= 130; seed++) {
      const { events } = await run(seed, 'foreign');
      const start = events.find((e) => e.type === 'bootstrap');
      // Resumed: a transaction after the position happened to rewrite the changed page (the copy was
      // checked equal to the primary's in run()).
      if (start && start.type === 'bootstrap' && start.from === 'local') continue;
      refused++;
      expect(events.some((e) => e.type === 'refused')).toBe(true);
    }
    expect(refused).toBeGreaterThanOrEqual(12);
  }, 120_000);
});
