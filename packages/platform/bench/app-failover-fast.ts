// pnpm bench app-failover-fast: kill -9 of the leader's process -> the standby has promoted the app's
// replicated SQLite data and its backend (an HTTP service started by the process backend) answers healthy,
// with fast failover on (the election's liveness probes), 3 nodes, TTL 3 s. Baseline, in the same run and
// interleaved round by round: the same failover with fast failover off (a second platform on the same
// server). Reports p50 and max of both; the goal is a fast-mode p50 ≤ 500 ms. Each new leader's promoted
// database must hold every row its predecessor had acknowledged as replicated (`sync()`).
//
// The file is also the node program (GC_BENCH_ROLE=node): an active-passive app with `sqlite` and a
// process backend, writing a row every 100 ms while active.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HTTP_SERVICE_FIXTURE } from '@gc/testkit';

const ROLE = process.env.GC_BENCH_ROLE;
/** The active node writes (and syncs) a row this often: steady replicated writes, not a load test. */
const WRITE_EVERY_MS = 100;

if (ROLE === 'node') await runNode();
else await runBench();

async function runNode(): Promise<void> {
  const { electionFor, platformFromEnv, serviceBackend } = await import('./_env-node.js');
  const send = (m: Record<string, unknown>) =>
    process.send?.({ ...m, t: Number(process.hrtime.bigint()) / 1e6 });
  const port = Number(process.env.SERVICE_PORT);
  const ttlMs = Number(process.env.TTL_MS ?? 3000);
  const dataDir = process.env.DATA_DIR!;
  const platform = await platformFromEnv(dataDir);
  const app = platform.app('web', {
    election: { ...electionFor(ttlMs), fastFailover: process.env.FAST === '1' },
    sqlite: { path: join(dataDir, 'web.db'), snapshotIntervalMs: 0 },
    backend: serviceBackend(port),
  });
  let writing = 0;
  app.on('onActive', ({ epoch }) => {
    const primary = app.sqlite()?.primary;
    if (!primary) throw new Error('active without a primary');
    primary.db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, epoch INTEGER)');
    const { n } = primary.db.prepare('SELECT count(*) AS n FROM t').get() as { n: number };
    send({ type: 'active', epoch, rows: n });
    setTimeout(() => send({ type: 'phases', epoch, phases: app.status().lastActivation }), 200);
    const run = ++writing;
    void (async () => {
      // Steady writes while active (until onPassive); each acknowledged row count is reported once the
      // stream holds it.
      while (run === writing) {
        try {
          await primary.write((db) => db.prepare('INSERT INTO t (epoch) VALUES (?)').run(epoch));
          await primary.sync();
          const { n: rows } = primary.db.prepare('SELECT count(*) AS n FROM t').get() as { n: number };
          send({ type: 'synced', epoch, rows });
        } catch (err) {
          send({ type: 'write-failed', error: (err as Error).message });
          return; // demoted meanwhile
        }
        await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
      }
    })();
  });
  app.on('onLeaderChange', ({ leader }) => void send({ type: 'leader', leader }));
  app.on('onPassive', () => {
    writing++;
  });
  await platform.start();
  send({ type: 'ready' });
  process.on('SIGTERM', () => void platform.close().then(() => process.exit(0)));
}

async function runBench(): Promise<void> {
  const { freePort, makeTempDir, spawnNode, startServer, cleanupAll } = await import('@gc/testkit');
  const { findListenerPid } = await import('@gc/backends');
  type ChildNode = ReturnType<typeof spawnNode>;

  const ROUNDS = Number(process.env.ROUNDS ?? process.env.GC_BENCH_ROUNDS ?? 7);
  const TTL = Number(process.env.TTL_MS ?? 3000);
  const GOAL_MS = 500;
  const self = fileURLToPath(import.meta.url);
  const service = HTTP_SERVICE_FIXTURE;
  const server = await startServer();

  interface Msg {
    type: string;
    t: number;
    epoch?: number;
    rows?: number;
    phases?: Record<string, number>;
  }

  class Cluster {
    readonly nodes = new Map<string, ChildNode>();
    readonly ports = new Map<string, number>();
    readonly times: number[] = [];
    readonly activeTimes: number[] = [];
    dataChecks = 0;
    dataFailures: string[] = [];
    constructor(
      readonly platform: string,
      readonly fast: boolean,
      readonly ids: string[],
    ) {}

    async start(id: string): Promise<void> {
      if (!this.ports.has(id)) this.ports.set(id, await freePort());
      const c = spawnNode(self, {
        label: `${this.platform}-${id}`,
        env: {
          GC_BENCH_ROLE: 'node',
          PLATFORM: this.platform,
          NODE_ID: id,
          NATS_URL: server.url,
          DATA_DIR: await makeTempDir(`${this.platform}-${id}`),
          SERVICE: service,
          SERVICE_PORT: String(this.ports.get(id)),
          TTL_MS: String(TTL),
          FAST: this.fast ? '1' : '0',
          GC_LOG_LEVEL: 'error',
        },
      });
      this.nodes.set(id, c);
      await c.waitForMessage((m: Msg) => m.type === 'ready', 30_000);
    }

    async healthy(id: string): Promise<boolean> {
      try {
        const r = await fetch(`http://127.0.0.1:${this.ports.get(id)}/`, {
          signal: AbortSignal.timeout(200),
        });
        return r.ok;
      } catch {
        return false;
      }
    }

    async leader(): Promise<string> {
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline) {
        for (const id of this.ids) if (this.nodes.get(id)?.running && (await this.healthy(id))) return id;
        await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
      }
      throw new Error(`${this.platform}: no leader with a healthy backend within 30 s`);
    }

    /** One failover; returns ms from the kill to the standby's healthy backend. */
    async round(label: string, record: boolean): Promise<void> {
      const old = await this.leader();
      const oldNode = this.nodes.get(old)!;
      // Let the leader write and replicate for a moment, as an app would.
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      const acknowledged = oldNode
        .messages<Msg>()
        .filter((m) => m.type === 'synced')
        .at(-1)?.rows;
      const t0 = performance.now();
      const wall0 = Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC: the children stamp with it too
      await oldNode.kill('SIGKILL');
      // The backend runs in its own process group and outlives a SIGKILLed node; a crashed machine takes
      // both down, so the bench kills the orphaned service as well.
      const orphan = findListenerPid(this.ports.get(old)!);
      if (orphan) process.kill(-orphan, 'SIGKILL');
      let next: string | undefined;
      while (!next && performance.now() - t0 < 30_000) {
        for (const id of this.ids) {
          if (id !== old && this.nodes.get(id)?.running && (await this.healthy(id))) next = id;
        }
        if (!next) await new Promise((r) => setTimeout(r, 5));
      }
      const ms = performance.now() - t0;
      if (!next) throw new Error(`${this.platform}: no standby took over within 30 s`);
      const nextNode = this.nodes.get(next)!;
      const active = await nextNode.waitForMessage<Msg>(
        (m) => m.type === 'active' && m.t > wall0,
        10_000,
        'onActive',
      );
      const elected = nextNode
        .messages<Msg & { leader?: string }>()
        .find((m) => m.type === 'leader' && m.t > wall0 && m.leader === next);
      const phases = await nextNode
        .waitForMessage<Msg>((m) => m.type === 'phases' && m.t > wall0, 5000, 'phases')
        .then((m) => m.phases)
        .catch(() => undefined);
      if (record) {
        this.times.push(ms);
        this.activeTimes.push(active.t - wall0);
        this.dataChecks++;
        if (acknowledged !== undefined && (active.rows ?? 0) < acknowledged) {
          this.dataFailures.push(`${label}: promoted ${active.rows} rows, ${acknowledged} were acknowledged`);
        }
      }
      console.error(
        `${label} ${this.fast ? 'fast   ' : 'default'}: ${old} -> ${next} healthy in ${Math.round(ms)} ms (onActive at ${Math.round(active.t - wall0)} ms, ${active.rows} rows promoted, ${acknowledged ?? '-'} acknowledged; elected at ${elected ? Math.round(elected.t - wall0) : '?'} ms, phases ${JSON.stringify(phases)})`,
      );
      await this.start(old);
    }

    async close(): Promise<void> {
      await Promise.all([...this.nodes.values()].map((c) => c.stop()));
    }
  }

  const ids = ['a', 'b', 'c'];
  const fast = new Cluster('bfast', true, ids);
  const slow = new Cluster('bdefault', false, ids);
  const p = (xs: number[], q: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
  let report: Record<string, unknown>;
  try {
    for (const c of [fast, slow]) for (const id of ids) await c.start(id);
    await Promise.all([fast.leader(), slow.leader()]);
    // Fast-mode standbys count "no responders" only renewDeadlineMs after they connected.
    await new Promise((r) => setTimeout(r, (TTL * 2) / 3 + 500));
    for (let r = 0; r <= ROUNDS; r++) {
      // Interleaved: A B A B; round 0 is the warm-up.
      await fast.round(`round ${r}`, r > 0);
      await slow.round(`round ${r}`, r > 0);
      await new Promise((res) => setTimeout(res, (TTL * 2) / 3 + 300));
    }
    const fastP50 = p(fast.times, 0.5);
    const slowP50 = p(slow.times, 0.5);
    report = {
      bench: 'app-failover-fast',
      rounds: ROUNDS,
      ttlMs: TTL,
      fastP50Ms: Math.round(fastP50),
      fastMaxMs: Math.round(Math.max(...fast.times)),
      fastOnActiveP50Ms: Math.round(p(fast.activeTimes, 0.5)),
      defaultP50Ms: Math.round(slowP50),
      defaultMaxMs: Math.round(Math.max(...slow.times)),
      dataChecks: fast.dataChecks + slow.dataChecks,
      dataFailures: [...fast.dataFailures, ...slow.dataFailures],
      natsServer: server.version,
      node: process.version,
      ratio: +(fastP50 / slowP50).toFixed(3),
      bar: { fastP50Ms: GOAL_MS },
      pass: fastP50 <= GOAL_MS && fast.dataFailures.length + slow.dataFailures.length === 0,
    };
  } finally {
    await fast.close();
    await slow.close();
    await server.close();
    await cleanupAll();
  }
  console.log(JSON.stringify(report));
}
