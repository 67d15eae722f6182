// `pnpm bench placement-move`: a label change → the app active on its new node, against the floor: a plain
// switchover (`stepDown()`) of the same kind of app without placement, on the same nodes (the least any move
// of an active-passive app costs: the old leader deactivates, the standby promotes its replicated SQLite
// database and activates). Two platforms with `disk=ssd` on one nats-server, in this process, each with
// `orders` (`placement: { onLabel: 'disk=ssd' }`) and `plain` (no placement), both with a replicated
// database. Rounds interleaved A B A B after a warm-up, each from a settled state (standbys caught up and
// contending), after 50 rows written and synced: A relabels the leader's node `disk=hdd` (the scheduler
// re-decides, the leader hands over to the ready standby) and relabels it back; B steps `plain`'s leader
// down. Every round checks that the new leader holds every acknowledged row. Prints one JSON line last.
import { join } from 'node:path';
import { fastElection, makeTempDir, startServer, waitFor, median } from '@gc/testkit';
import { createPlatform, type App, type Platform } from '../src/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const election = fastElection();

const server = await startServer();
const nodes: Array<{ id: string; p: Platform; app: App; plain: App }> = [];
for (const id of ['n1', 'n2']) {
  const dataDir = await makeTempDir(`bench-placement-${id}`);
  const p = await createPlatform({
    name: 'benchplc',
    nodeId: id,
    nats: { servers: server.url },
    dataDir,
    http: false,
    labels: { disk: 'ssd' },
    heartbeatMs: 300,
    // What is measured is the mechanism, not the policy: rounds follow each other faster than the default
    // 30 s cooldown between two automatic migrations of one app would allow.
    migrations: { cooldownMs: 0 },
  });
  const app = p.app('orders', {
    election,
    placement: { onLabel: 'disk=ssd' },
    sqlite: { path: join(dataDir, 'orders.db'), snapshotIntervalMs: 0 },
  });
  // The floor: the same app without placement (its own database), switched over by a step-down.
  const plain = p.app('plain', {
    election,
    sqlite: { path: join(dataDir, 'plain.db'), snapshotIntervalMs: 0 },
  });
  for (const a of [app, plain])
    a.on('onActive', () => {
      a.sqlite()!.primary!.db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
    });
  nodes.push({ id, p, app, plain });
}
await Promise.all(nodes.map((n) => n.p.start()));

type Which = 'app' | 'plain';
const leader = (w: Which) =>
  waitFor(() => nodes.find((n) => n[w].isActive() && n[w].sqlite()?.primary), {
    timeoutMs: 30_000,
    message: `a leader of ${w} with its primary`,
  });
const written: Record<Which, number> = { app: 0, plain: 0 };
/** Writes 50 rows on the leader and syncs them; returns how many rows the app has acknowledged in all. */
async function write(w: Which): Promise<number> {
  const primary = (await leader(w))[w].sqlite()!.primary!;
  await primary.write((db) => {
    const ins = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');
    for (let i = 0; i < 50; i++) ins.run(++written[w], `row ${written[w]}`);
  });
  await primary.sync();
  return written[w];
}
/** Waits for `to` to be the only active node; checks it holds every acknowledged row. */
async function landed(w: Which, to: string, acked: number, t0: number): Promise<number> {
  await waitFor(
    () =>
      nodes
        .filter((n) => n[w].isActive())
        .map((n) => n.id)
        .join() === to,
    {
      timeoutMs: 40_000,
      message: () =>
        `${w} active on ${to}: ${JSON.stringify(nodes.map((n) => ({ id: n.id, role: n[w].role(), placement: n[w].status().placement })))}`,
    },
  );
  const ms = performance.now() - t0;
  const n = nodes.find((x) => x.id === to)!;
  const primary = await waitFor(() => n[w].sqlite()?.primary, { timeoutMs: 10_000, message: 'primary' });
  const { c } = primary.db.prepare('SELECT count(*) AS c FROM t WHERE id <= ?').get(acked) as { c: number };
  if (c !== acked) throw new Error(`${w} on ${to} holds ${c} of ${acked} acknowledged rows`);
  return ms;
}
/** Waits until the standby is ready again: the state both kinds of round start from. */
async function settled(w: Which): Promise<void> {
  await waitFor(
    async () => {
      const placed = await nodes[0]!.p.placement().where('orders');
      return (
        // Both placed, one active, and each standby contending (not cooling down after a step-down).
        placed.placed.length === 2 &&
        placed.active.length === 1 &&
        nodes.every((n) => n.app.status().placement?.placed && n.app.status().placement?.contending) &&
        nodes.filter((n) => n.plain.isActive()).length === 1
      );
    },
    { timeoutMs: 30_000, message: 'both nodes placed again' },
  );
  // The standby's replica caught up, and its cooldown after a step-down of its own is over.
  await waitFor(
    () => {
      const standby = nodes.find((n) => !n[w].isActive())!;
      const r = standby[w].status().replication;
      return r?.state === 'following' && r.lagTx === 0;
    },
    { timeoutMs: 30_000, message: 'standby caught up' },
  );
  await new Promise((r) => setTimeout(r, election.cooldownMs + 100));
}

async function relabelRound(): Promise<number> {
  await settled('app');
  const acked = await write('app');
  const from = await leader('app');
  const to = nodes.find((n) => n !== from)!;
  const t0 = performance.now();
  await from.p.setLabels({ disk: 'hdd' });
  const ms = await landed('app', to.id, acked, t0);
  await from.p.setLabels({ disk: 'ssd' });
  return ms;
}
async function stepdownRound(): Promise<number> {
  await settled('plain');
  const acked = await write('plain');
  const from = await leader('plain');
  const to = nodes.find((n) => n !== from)!;
  const t0 = performance.now();
  await from.plain.stepDown();
  return landed('plain', to.id, acked, t0);
}

console.error(`warm-up: move ${Math.round(await relabelRound())} ms`);
console.error(`warm-up: step-down ${Math.round(await stepdownRound())} ms`);
const moves: number[] = [];
const floors: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  moves.push(await relabelRound());
  floors.push(await stepdownRound());
  console.error(
    `round ${r + 1}: move ${Math.round(moves.at(-1)!)} ms, step-down ${Math.round(floors.at(-1)!)} ms`,
  );
}
await Promise.all(nodes.map((n) => n.p.close()));
await server.close();
const moveMs = median(moves);
const floorMs = median(floors);
const ratio = Math.round((moveMs / floorMs) * 100) / 100;
const bar = { ratio: 3, moveMsBelow: 5000 };
console.log(
  JSON.stringify({
    bench: 'placement-move',
    rounds: ROUNDS,
    moveMedianMs: Math.round(moveMs),
    moveMaxMs: Math.round(Math.max(...moves)),
    stepdownMedianMs: Math.round(floorMs),
    stepdownMaxMs: Math.round(Math.max(...floors)),
    ratio,
    bar,
    pass: ratio <= bar.ratio && moveMs < bar.moveMsBelow,
  }),
);
