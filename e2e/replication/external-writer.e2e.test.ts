// R18: a database written by another program (Debian's sqlite3 CLI, as the Convex backend writes its own),
// replicated by gc. Seeded workloads with every checkpoint mode, wal_autocheckpoint 0/10/1000, VACUUM, DDL
// and blobs; the writer exits (a closing connection checkpoints) and comes back several times. Checked after
// every writer session: sync() returns only when the stream holds the file's state; at the end the file,
// the stream's last acknowledged checksum and every replica are byte-identical.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  makeTempDir,
  spawnNode,
  type ChildNode,
  SqliteCli,
  WORKLOAD_SCHEMA,
  seededRandom,
  workloadSql,
} from '@gc/testkit';
import { PageHashes, formatChecksum, openDatabase, pageHash } from '@gc/snapshot';
import { createPrimary, createReplica, type Primary, type PrimaryEvent, type Replica } from '@gc/wal';
import { useServer } from '../test/server.js';
import { readerBytes } from './harness.js';

const long = process.env.GC_LONG_TESTS === '1';
const SEEDS = Number(process.env.GC_R18_SEEDS ?? (long ? 100 : 15));
const SESSIONS = long ? 8 : 3;
const STATEMENTS = long ? 120 : 14;
const fixture = (f: string) => new URL(`./fixtures/${f}`, import.meta.url).pathname;

const nats = useServer();
let n = 0;
const nextApp = () => `x${++n}`;

/** The database as a new reader sees it: its bytes and checksum. */
function fileState(path: string): { bytes: Buffer; checksum: string } {
  const bytes = readerBytes(path);
  const size = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
  const h = new PageHashes();
  for (let p = 1; p * size <= bytes.length; p++)
    h.set(p, pageHash(p, bytes.subarray((p - 1) * size, p * size), size));
  h.resize(bytes.length / size);
  return { bytes, checksum: formatChecksum(h.checksum) };
}

function newDatabase(path: string): void {
  const db = openDatabase(path);
  db.pragma('journal_mode = WAL');
  db.exec(WORKLOAD_SCHEMA);
  db.close();
}

/** One writer session: a new sqlite3 process, random autocheckpoint, `count` statements, then it exits. */
async function writerSession(path: string, rnd: () => number, count: number): Promise<string[]> {
  const cli = new SqliteCli(path);
  const did = [`autocheckpoint ${[0, 10, 1000][Math.floor(rnd() * 3)]}`];
  await cli.exec(`PRAGMA wal_autocheckpoint = ${did[0]!.split(' ')[1]};`);
  for (let i = 0; i < count; i++) {
    const { sql, what } = workloadSql(rnd);
    await cli.exec(sql);
    did.push(what);
  }
  await cli.close();
  return did;
}

async function expectReplicasEqual(
  replicas: Replica[],
  txid: number,
  file: { bytes: Buffer; checksum: string },
) {
  for (const r of replicas) {
    await r.waitForTxid(txid, 30_000);
    expect(r.position().checksum).toBe(file.checksum);
    expect(Buffer.compare(readFileSync(r.replicaPath), file.bytes)).toBe(0);
  }
}

describe.each(['inline', 'worker'] as const)('R18: an external sqlite3 writer (engine %s)', (engine) => {
  it(`file, stream and replicas stay identical over ${SEEDS} seeds of writer sessions that exit and come back`, async () => {
    let statements = 0;
    let resyncs = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const dir = await makeTempDir('r18');
      const app = nextApp();
      const path = join(dir, 'db.sqlite');
      newDatabase(path);
      const events: PrimaryEvent[] = [];
      const primary: Primary = await createPrimary(nats.nc, {
        platform: 'e2e',
        app,
        path,
        epoch: 1,
        onEvent: (e) => events.push(e),
        ...(engine === 'worker' ? { worker: { connect: { servers: nats.server.url } } } : {}),
      });
      const replicas = await Promise.all(
        ['a', 'b'].map((r) => createReplica(nats.nc, { platform: 'e2e', app, path: join(dir, `${r}.db`) })),
      );
      const rnd = seededRandom(seed * 7919 + (engine === 'worker' ? 1 : 0));
      const log: string[] = [];
      for (let s = 0; s < SESSIONS; s++) {
        log.push(...(await writerSession(path, rnd, STATEMENTS)));
        statements += STATEMENTS;
        // sync() after the writer exited: the stream must hold exactly what the file holds.
        const pos = await primary.sync();
        const file = fileState(path);
        expect(pos.checksum, `seed ${seed} session ${s}: ${log.slice(-STATEMENTS - 1).join(', ')}`).toBe(
          file.checksum,
        );
      }
      const pos = await primary.sync();
      const file = fileState(path);
      expect(pos.checksum, `seed ${seed}`).toBe(file.checksum);
      await expectReplicasEqual(replicas, pos.txid, file);
      const stopped = await primary.stop();
      expect(stopped.unreplicatedTransactions).toBe(0);
      expect(
        events.filter((e) => e.type === 'error').map((e) => (e as { error: Error }).error.message),
      ).toEqual([]);
      resyncs += events.filter((e) => e.type === 'resync').length;
      for (const e of events)
        if (e.type === 'resync' && e.txid > 1) console.log(`seed ${seed}: resync: ${e.reason}`);
      await Promise.all(replicas.map((r) => r.close()));
    }
    console.log(`R18 ${engine}: ${SEEDS} seeds, ${statements} statements, ${resyncs} full resyncs`);
    expect(resyncs).toBe(SEEDS); // the first publish of each new database, nothing else
  }, 600_000);
});

describe('R18: the replicator killed with SIGKILL while another process writes', () => {
  it.each([1, 2, 3])(
    'a restarted replicator publishes what was committed while it was dead (seed %i)',
    async (seed) => {
      const dir = await makeTempDir('r18-kill');
      const app = nextApp();
      const path = join(dir, 'db.sqlite');
      newDatabase(path);
      const start = (epoch: number) =>
        spawnNode(fixture('capture.ts'), {
          env: {
            NATS_URL: nats.server.url,
            DB_PATH: path,
            APP: app,
            EPOCH: String(epoch),
            ...(seed % 2 ? { WORKER: '1' } : {}),
          },
        });
      let ids = 0;
      const sync = async (c: ChildNode) => {
        const id = ++ids;
        c.send({ type: 'sync', id });
        return c.waitForMessage<{ type: string; id: number; txid: number; checksum: string }>(
          (m) => m.type === 'synced' && m.id === id,
          30_000,
          'sync',
        );
      };
      let child = start(1);
      await child.waitForMessage((m: { type: string }) => m.type === 'ready', 30_000, 'ready');
      const replica = await createReplica(nats.nc, { platform: 'e2e', app, path: join(dir, 'r.db') });
      const rnd = seededRandom(seed);
      const cli = new SqliteCli(path);
      for (let i = 0; i < 20; i++) await cli.exec(workloadSql(rnd).sql);
      const before = await sync(child);
      expect(before.checksum).toBe(fileState(path).checksum);
      for (let i = 0; i < 5; i++) await cli.exec(workloadSql(rnd).sql);
      await child.kill('SIGKILL'); // mid-run: some commits captured, maybe published, maybe not
      for (let i = 0; i < 15; i++) await cli.exec(workloadSql(rnd).sql); // written while no replicator runs
      await cli.close();
      child = start(2);
      const ready = await child.waitForMessage<{ type: string; txid: number }>(
        (m) => m.type === 'ready',
        30_000,
        'ready',
      );
      expect(ready.txid).toBeGreaterThanOrEqual(before.txid);
      const after = await sync(child);
      const file = fileState(path);
      expect(after.checksum).toBe(file.checksum);
      await expectReplicasEqual([replica], after.txid, file);
      const resync = child
        .messages<{ type: string; kind?: string; reason?: string }>()
        .find((m) => m.kind === 'resync');
      expect(resync?.reason).toMatch(/while no replicator ran/);
      await replica.close();
      await child.stop();
    },
  );
});
