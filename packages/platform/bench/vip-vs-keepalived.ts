// Benchmark `vip-vs-keepalived`: a dead master (SIGKILL of its daemon and of its HTTP responder) → the
// client gets the backup's answer at the virtual IP. gc against keepalived (VRRP), side by side in one
// run, on the same topology: network namespaces on a bridge (10.250.7.x, nothing on the host's own
// network) — hosts A and B, client C, and N running the nats-server gc needs. C sends a fresh HTTP GET to
// each side's VIP every 20 ms; each responder answers its host's name.
//
//   gc-default   an active-passive app with `vip` and a process backend (the responder), election
//                defaults (TTL 3 s); gc starts the responder on activation (after the VIP).
//   gc-fast      the same with `election.fastFailover: true`.
//   gc-fast-warm gc-fast with `backendRuns: 'always'`: the responder runs on the standby too (as keepalived's
//                do), so a failover moves the VIP and finds the new master's backend already healthy.
//   ka-1s        keepalived 2.2.7, VRRPv2, unicast_peer, advert_int 1; responders run all the time.
//   ka-100ms     the same with VRRPv3 and advert_int 0.1.
//   ka-10ms      the same with advert_int 0.01 (the smallest keepalived accepts), for reference, no bar.
//
// All five run at once (own VIP, port, platform / VRID) and are measured interleaved round by round
// (gc-default, ka-1s, gc-fast, ka-100ms, ka-10ms, gc-default, …), the first round a warm-up. Transitions
// to MASTER that no kill caused (flaps) are counted per keepalived side. The kill lands at a
// random point of the renew / advert cycle; after each round the dead host "reboots" (its stale VIP is
// removed, its daemon and responder start again as the backup).
//
// Bar: gc fast failover p50 ≤ keepalived at advert_int 0.1 p50 on the same topology — responders running
// on both hosts — so `ratio` is gc-fast-warm / ka-100ms; gc-fast (backend started on activation) is reported
// beside it.
// keepalived and arping come from Debian (`scripts/provision-peer.sh`, root only); without them, or without
// network namespaces (not root), the bench prints `skipped` with the reason.
//
// env: GC_BENCH_ROUNDS (default 7 measured rounds); GC_BENCH_FAULT=SIGSTOP freezes the master's daemon and
// responder instead (a machine that stops without closing its TCP connections, like a power loss or a hang).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  findNatsServer,
  natsServerVersion,
  addressesOf,
  arpingUnavailableReason,
  createLan,
  netnsUnavailableReason,
  spawnInNetns,
  type NetnsNode,
  type TestHost,
  type TestLan,
  median,
} from '@gc/testkit';
import { RESPONDER_SCRIPT } from './_vip-responder.js';

const BENCH = 'vip-vs-keepalived';
const ROUNDS = Number(process.env.GC_BENCH_ROUNDS ?? 7);
const SUBNET_INDEX = 7;
/** SIGKILL: a dead machine (its kernel closes its TCP connections). SIGSTOP: a machine that stops without
 * closing them (power loss, hang): NATS keeps the node's subscriptions, so gc's fast failover sees probe
 * timeouts, not "no responders", and falls back to the TTL. */
const FAULT: NodeJS.Signals = process.env.GC_BENCH_FAULT === 'SIGSTOP' ? 'SIGSTOP' : 'SIGKILL';
const BAR = { gcFastWarmP50VsKeepalived100msP50: 1.0 };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = fileURLToPath(new URL('../../../', import.meta.url));
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

function skip(reason: string): never {
  console.log(JSON.stringify({ bench: BENCH, skipped: reason, ratio: null, bar: BAR, pass: false }));
  process.exit(0);
}

// ---- preconditions ----------------------------------------------------------------------------------

const netnsWhy = netnsUnavailableReason();
if (netnsWhy) skip(netnsWhy);
const haveKeepalived = () => spawnSync('keepalived', ['--version'], { encoding: 'utf8' }).status === 0;
if (!haveKeepalived() || arpingUnavailableReason()) {
  const r = spawnSync(join(root, 'scripts/provision-peer.sh'), ['keepalived', 'arping'], {
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (r.status !== 0 || !haveKeepalived() || arpingUnavailableReason()) {
    const why = (r.stderr ?? '').trim().split('\n').at(-1) || r.error?.message || `exit ${r.status}`;
    skip(`keepalived and arping (Debian) are not installed and could not be installed: ${why}`);
  }
}
const natsBin = findNatsServer();
if (!natsBin) skip('no nats-server binary (run scripts/provision-nats.sh or set NATS_SERVER_BIN)');
const keepalivedOut = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
const keepalivedVersion = /Keepalived v(\S+)/.exec(keepalivedOut.stderr + keepalivedOut.stdout)?.[1];

// ---- processes in namespaces (daemons without IPC) -----------------------------------------------------

/** A program run with `ip netns exec` in its own process group; `kill` signals the whole group. */
class NsProcess {
  readonly proc: ChildProcess;
  readonly log: string[] = [];
  readonly exited: Promise<void>;
  /** keepalived log lines "Entering MASTER STATE" so far. */
  masterEntries = 0;

  constructor(
    readonly label: string,
    netns: string,
    argv: string[],
    env: Record<string, string> = {},
  ) {
    this.proc = spawn('ip', ['netns', 'exec', netns, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      detached: true,
    });
    let partial = '';
    const collect = (d: Buffer) => {
      this.log.push(d.toString());
      if (this.log.length > 400) this.log.splice(0, 200);
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      this.masterEntries += lines.filter((l) => l.includes('Entering MASTER STATE')).length;
    };
    this.proc.stdout!.on('data', collect);
    this.proc.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    daemons.add(this);
    void this.exited.then(() => daemons.delete(this));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  signal(s: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.proc.pid!, s);
    } catch {
      // already gone
    }
  }

  async waitForLog(re: RegExp, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!re.test(this.log.join(''))) {
      if (performance.now() > deadline || !this.running) {
        throw new Error(
          `${this.label}: no ${re} within ${timeoutMs} ms${this.running ? '' : ' (exited)'}:\n${this.log.join('').slice(-2000)}`,
        );
      }
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.signal('SIGTERM');
    const deadline = performance.now() + 3000;
    while (this.running && performance.now() < deadline) await sleep(20);
    this.signal('SIGKILL');
    await this.exited;
  }
}

const daemons = new Set<NsProcess>();
const ipcNodes = new Set<NetnsNode>();
let lan: TestLan | undefined;
const workDir = mkdtempSync(join(tmpdir(), 'gc-bench-vip-'));

/** Kills every process left in the LAN's namespaces (gc's backends run in their own process groups). */
function killEverything(): void {
  for (const d of daemons) d.signal('SIGKILL');
  for (const n of ipcNodes) {
    try {
      process.kill(n.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const h of lan?.hosts ?? []) {
    const pids = spawnSync('ip', ['netns', 'pids', h.netns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
process.once('exit', () => {
  killEverything();
  lan?.close();
  rmSync(workDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

// ---- the sides ----------------------------------------------------------------------------------------

type HostName = 'A' | 'B';

interface Side {
  readonly name: string;
  readonly vip: string;
  readonly port: number;
  readonly times: number[];
  /** Earliest performance.now() at which this side's next kill may happen. */
  readyAt: number;
  start(host: HostName): Promise<void>;
  /** The fault on the host's daemon and responder: SIGKILL (the machine is dead) or SIGSTOP (it hangs). */
  fail(host: HostName, signal: NodeJS.Signals): void;
  /** SIGKILL of whatever of this side still runs on the host, waiting for its exit (the host reboots). */
  reap(host: HostName): Promise<void>;
  /** After a round: what the new master reported (gc phases), for the log and the report. */
  afterRound(newMaster: HostName, killedAt: number): Promise<Record<string, number> | undefined>;
  close(): Promise<void>;
}

let hosts: Record<HostName | 'C' | 'N', TestHost>;
let natsUrl = '';

class GcSide implements Side {
  readonly times: number[] = [];
  readonly phases: Array<Record<string, number>> = [];
  readonly nodes = new Map<HostName, NetnsNode>();
  readyAt = 0;

  constructor(
    readonly name: string,
    readonly platform: string,
    readonly vip: string,
    readonly port: number,
    readonly fast: boolean,
    readonly warm = false,
  ) {}

  async start(host: HostName): Promise<void> {
    const dataDir = join(workDir, `${this.platform}-${host}`);
    mkdirSync(dataDir, { recursive: true });
    const node = spawnInNetns(hosts[host].netns, here('./_vip-gc-host.ts'), {
      PLATFORM: this.platform,
      NODE_ID: host,
      NATS_URL: natsUrl,
      DATA_DIR: dataDir,
      VIP: this.vip,
      PORT: String(this.port),
      FAST: this.fast ? '1' : '0',
      WARM: this.warm ? '1' : '0',
      GC_LOG_LEVEL: 'error',
    });
    ipcNodes.add(node);
    void node.exited.then(() => ipcNodes.delete(node));
    this.nodes.set(host, node);
    await node.waitForMessage<{ type: string }>((m) => m.type === 'ready', 60_000);
    // A fast-failover standby counts "no responders" only renewDeadlineMs (2 s) after it connected.
    this.readyAt = performance.now() + (this.fast ? 2500 : 500);
  }

  #backendPid(host: HostName): number | undefined {
    const node = this.nodes.get(host)!;
    return node
      .messages<{ type: string; backendPid?: number }>()
      .filter((m) => m.type === 'active')
      .at(-1)?.backendPid;
  }

  fail(host: HostName, signal: NodeJS.Signals): void {
    const node = this.nodes.get(host)!;
    const backendPid = this.#backendPid(host);
    if (!backendPid)
      throw new Error(`${this.name}: ${host} is the master but never reported its backend's pid`);
    process.kill(node.pid, signal);
    // The backend runs in its own process group and would outlive a SIGKILLed node; a dead machine takes
    // both down.
    process.kill(-backendPid, signal);
  }

  async reap(host: HostName): Promise<void> {
    const node = this.nodes.get(host);
    const backendPid = this.#backendPid(host);
    if (backendPid) {
      try {
        process.kill(-backendPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await node?.kill('SIGKILL');
  }

  async afterRound(newMaster: HostName, killedAt: number): Promise<Record<string, number> | undefined> {
    const node = this.nodes.get(newMaster)!;
    const active = await node.waitForMessage<{ type: string; at: number }>(
      (m) => m.type === 'active' && m.at > killedAt,
      30_000,
    );
    const after = node.messages().indexOf(active) + 1;
    const phases = await node
      .waitForMessage<{ type: string; phases?: Record<string, number> }>(
        (m) => m.type === 'phases',
        5000,
        after,
      )
      .then((m) => m.phases ?? {})
      .catch(() => ({}));
    // Kill → elected, roughly: onActive minus the activation phases before it (vip, backend, …).
    const onActiveMs = Math.round(active.at - killedAt);
    const phaseSum = Object.values(phases).reduce((n, v) => n + (typeof v === 'number' ? v : 0), 0);
    return { electedMs: Math.round(onActiveMs - phaseSum), onActiveMs, ...phases };
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        await n.kill('SIGTERM').catch(() => undefined);
      }),
    );
  }
}

class KeepalivedSide implements Side {
  readonly times: number[] = [];
  readonly daemons = new Map<HostName, { keepalived: NsProcess; responder: NsProcess }>();
  readonly allKeepalived: NsProcess[] = [];
  readyAt = 0;

  constructor(
    readonly name: string,
    readonly vrid: number,
    readonly vip: string,
    readonly port: number,
    readonly advertInt: number,
  ) {}

  #config(host: HostName): string {
    const self = hosts[host].address;
    const peer = hosts[host === 'A' ? 'B' : 'A'].address;
    // VRRPv2 rounds a fractional advert_int up to 1 s; sub-second adverts need VRRPv3. Both BACKUP with
    // nopreempt and equal priority: a restarted host stays backup, no extra move after a round.
    return `global_defs {
  router_id gcbench_${this.vrid}_${host}
  vrrp_version ${this.advertInt < 1 ? 3 : 2}
}
vrrp_instance VI_${this.vrid} {
  state BACKUP
  nopreempt
  interface eth0
  virtual_router_id ${this.vrid}
  priority 100
  advert_int ${this.advertInt}
  unicast_src_ip ${self}
  unicast_peer {
    ${peer}
  }
  virtual_ipaddress {
    ${this.vip}/32 dev eth0
  }
}
`;
  }

  async start(host: HostName): Promise<void> {
    const dir = join(workDir, `ka${this.vrid}-${host}`);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'keepalived.conf');
    writeFileSync(conf, this.#config(host));
    // A SIGKILLed keepalived leaves its pid files; a new one refuses to start ("daemon is already running").
    for (const f of ['keepalived.pid', 'vrrp.pid', 'checkers.pid']) rmSync(join(dir, f), { force: true });
    const netns = hosts[host].netns;
    const responder = new NsProcess(
      `${this.name}-${host}-responder`,
      netns,
      [process.execPath, '-e', RESPONDER_SCRIPT],
      {
        PORT: String(this.port),
        NAME: host,
        HOST: '0.0.0.0',
      },
    );
    const keepalived = new NsProcess(`${this.name}-${host}-keepalived`, netns, [
      'keepalived',
      '-f',
      conf,
      '-p',
      join(dir, 'keepalived.pid'),
      '-r',
      join(dir, 'vrrp.pid'),
      '-c',
      join(dir, 'checkers.pid'),
      '-P',
      '-n',
      '-l',
      '-D',
    ]);
    this.daemons.set(host, { keepalived, responder });
    this.allKeepalived.push(keepalived);
    await keepalived.waitForLog(/Entering (BACKUP|MASTER) STATE/, 15_000);
    this.readyAt = performance.now() + 500;
  }

  fail(host: HostName, signal: NodeJS.Signals): void {
    const d = this.daemons.get(host)!;
    d.keepalived.signal(signal);
    d.responder.signal(signal);
  }

  async reap(host: HostName): Promise<void> {
    const d = this.daemons.get(host);
    if (!d) return;
    d.keepalived.signal('SIGKILL');
    d.responder.signal('SIGKILL');
    await Promise.all([d.keepalived.exited, d.responder.exited]);
  }

  /** Transitions to MASTER beyond one at start and one per round: flaps nobody caused. */
  spuriousMasterTransitions(rounds: number): number {
    return this.allKeepalived.reduce((n, k) => n + k.masterEntries, 0) - 1 - rounds;
  }

  afterRound(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.daemons.values()].flatMap((d) => [d.keepalived.stop(), d.responder.stop()]));
  }
}

// ---- the run -----------------------------------------------------------------------------------------

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
const stats = (xs: number[]) => ({
  p50: Math.round(median(xs)),
  max: Math.round(pct(xs, 1)),
  min: Math.round(pct(xs, 0)),
});
const r3 = (x: number) => Math.round(x * 1000) / 1000;

let client: NetnsNode | undefined;
let requestId = 0;
async function ask<T extends { type: string; id: number }>(
  cmd: Record<string, unknown>,
  types: string[],
  timeoutMs: number,
): Promise<T> {
  const id = ++requestId;
  const c = client!;
  const from = c.messages().length;
  c.send({ ...cmd, id });
  return c.waitForMessage<T>((m) => m.id === id && types.includes(m.type), timeoutMs, from);
}

let nats: NsProcess | undefined;
const sides: Side[] = [];
let report: Record<string, unknown> | undefined;
try {
  lan = createLan(4, SUBNET_INDEX);
  const [A, B, C, N] = lan.hosts as [TestHost, TestHost, TestHost, TestHost];
  hosts = { A, B, C, N };
  const net = `10.250.${SUBNET_INDEX}`;

  // nats-server on its own host N of the LAN: the gc nodes reach it over the bridge.
  const natsDir = join(workDir, 'nats');
  mkdirSync(natsDir);
  nats = new NsProcess('nats-server', N.netns, [
    natsBin,
    '-a',
    N.address,
    '-p',
    '4222',
    '-js',
    '-sd',
    natsDir,
    '-n',
    'gcbench',
  ]);
  await nats.waitForLog(/Server is ready/, 20_000);
  natsUrl = `nats://${N.address}:4222`;

  const c = spawnInNetns(C.netns, here('./_vip-client.ts'));
  client = c;
  ipcNodes.add(c);
  await c.waitForMessage<{ type: string }>((m) => m.type === 'ready', 30_000);

  const gcDefault = new GcSide('gc-default', 'vipdefault', `${net}.101`, 8101, false);
  const kaSlow = new KeepalivedSide('ka-1s', 51, `${net}.103`, 8103, 1);
  const gcFast = new GcSide('gc-fast', 'vipfast', `${net}.102`, 8102, true);
  const kaFast = new KeepalivedSide('ka-100ms', 52, `${net}.104`, 8104, 0.1);
  // For reference (no bar): keepalived at the smallest advert_int it accepts.
  const kaTiny = new KeepalivedSide('ka-10ms', 53, `${net}.105`, 8105, 0.01);
  const gcFastWarm = new GcSide('gc-fast-warm', 'vipwarm', `${net}.106`, 8106, true, true);
  sides.push(gcDefault, kaSlow, gcFast, kaFast, gcFastWarm, kaTiny);
  const url = (s: Side) => `http://${s.vip}:${s.port}/`;
  const current = async (s: Side): Promise<HostName> => {
    const m = await ask<{ type: string; id: number; body: string | null }>(
      { cmd: 'current', url: url(s) },
      ['current'],
      35_000,
    );
    if (m.body !== 'A' && m.body !== 'B')
      throw new Error(`${s.name}: the VIP answers ${JSON.stringify(m.body)}, not A or B`);
    return m.body;
  };

  // A first (it becomes the master), then B as the backup.
  for (const s of sides) await s.start('A');
  for (const s of sides)
    if ((await current(s)) !== 'A') throw new Error(`${s.name}: A is not the master after starting first`);
  for (const s of sides) await s.start('B');

  for (let r = 0; r <= ROUNDS; r++) {
    for (const s of sides) {
      const old = await current(s);
      const next: HostName = old === 'A' ? 'B' : 'A';
      const held = addressesOf(hosts[old]).includes(s.vip);
      if (!held) throw new Error(`${s.name}: ${old} answers at ${s.vip} but does not hold it`);
      const wait = s.readyAt - performance.now();
      if (wait > 0) await sleep(wait);
      // A random point of the renew / advert cycle (both ≤ 1 s).
      await sleep(200 + Math.random() * 1000);
      const watch = ask<{ type: string; id: number; at?: number; body?: string; errors?: number }>(
        { cmd: 'watch', url: url(s), old },
        ['switched', 'gave-up'],
        70_000,
      );
      await c.waitForMessage<{ type: string; id: number }>(
        (m) => m.type === 'steady' && m.id === requestId,
        10_000,
      );
      const killedAt = now();
      s.fail(old, FAULT);
      const seen = await watch;
      if (seen.type !== 'switched' || seen.body !== next) {
        throw new Error(
          `${s.name}: after killing ${old} the client saw ${JSON.stringify(seen)} (expected ${next})`,
        );
      }
      const ms = seen.at! - killedAt;
      if (r > 0) s.times.push(ms); // round 0 is the warm-up
      const detail = await s.afterRound(next, killedAt);
      if (detail && r > 0 && s instanceof GcSide) s.phases.push(detail);
      console.error(
        `round ${r} ${s.name.padEnd(10)}: ${old} ${FAULT === 'SIGKILL' ? 'killed' : 'frozen'} -> client gets ${next} after ${Math.round(ms)} ms (${seen.errors} failed polls)${detail ? ` ${JSON.stringify(detail)}` : ''}${r === 0 ? ' (warm-up)' : ''}`,
      );
      // The dead host reboots: nothing of it left running, no stale VIP, daemon (and responder) back as the
      // backup.
      await s.reap(old);
      spawnSync('ip', ['-n', hosts[old].netns, 'addr', 'del', `${s.vip}/32`, 'dev', 'eth0'], {
        stdio: 'ignore',
      });
      await s.start(old);
    }
  }

  const phaseP50 = (side: GcSide) => {
    const keys = [...new Set(side.phases.flatMap((p) => Object.keys(p)))];
    return Object.fromEntries(keys.map((k) => [k, Math.round(median(side.phases.map((p) => p[k] ?? 0)))]));
  };
  const ratio = median(gcFastWarm.times) / median(kaFast.times);
  report = {
    bench: BENCH,
    rounds: ROUNDS,
    fault: FAULT,
    pollMs: 20,
    ms: {
      gcDefault: stats(gcDefault.times),
      gcFast: stats(gcFast.times),
      gcFastWarm: stats(gcFastWarm.times),
      keepalived1s: stats(kaSlow.times),
      keepalived100ms: stats(kaFast.times),
      keepalived10ms: stats(kaTiny.times),
    },
    gcPhasesP50Ms: { default: phaseP50(gcDefault), fast: phaseP50(gcFast), fastWarm: phaseP50(gcFastWarm) },
    p50Ratio: {
      gcDefaultVsKeepalived1s: r3(median(gcDefault.times) / median(kaSlow.times)),
      gcFastVsKeepalived1s: r3(median(gcFast.times) / median(kaSlow.times)),
      gcFastVsKeepalived100ms: r3(median(gcFast.times) / median(kaFast.times)),
      gcFastWarmVsKeepalived100ms: r3(ratio),
    },
    keepalivedSpuriousMasterTransitions: {
      ka1s: kaSlow.spuriousMasterTransitions(ROUNDS + 1),
      ka100ms: kaFast.spuriousMasterTransitions(ROUNDS + 1),
      ka10ms: kaTiny.spuriousMasterTransitions(ROUNDS + 1),
    },
    maxRatio: {
      gcDefaultVsKeepalived1s: r3(Math.max(...gcDefault.times) / Math.max(...kaSlow.times)),
      gcFastVsKeepalived100ms: r3(Math.max(...gcFast.times) / Math.max(...kaFast.times)),
      gcFastWarmVsKeepalived100ms: r3(Math.max(...gcFastWarm.times) / Math.max(...kaFast.times)),
    },
    keepalived: keepalivedVersion,
    natsServer: natsServerVersion(natsBin),
    node: process.version,
    ratio: r3(ratio),
    bar: BAR,
    pass: ratio <= BAR.gcFastWarmP50VsKeepalived100msP50,
  };
} finally {
  await Promise.allSettled(sides.map((s) => s.close()));
  await client?.kill('SIGKILL').catch(() => undefined);
  await nats?.stop();
  killEverything();
  lan?.close();
  rmSync(workDir, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
