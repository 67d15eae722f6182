// R16: a deterministic simulation of the election. A test facility, exported from nowhere: `simulation.test.ts`
// runs it over many seeds, against the real election and against mutants of it.
//
// What runs is the real decision code (`createElectionOnStore`, or a mutant with the same signature): several
// nodes, each an Election on its own handle of one in-process lease store (`MemoryLeaseBackend`: CAS on
// revisions, the same semantics as NATS KV, proven by `store.contract.test.ts`), on simulated time. One
// master `FakeClock` is real time; each node's clock runs at its own rate (drift) and can be paused like a
// SIGSTOPped process. A seeded scheduler advances time in small random steps and injects faults; the
// invariants are checked before every callback any node runs and after every step. The same seed gives the
// same run, event for event (the trace), so any failure replays from its seed.

import { Rng } from '@gc/testkit';
import { FakeClock, memoryEpochStore, type Clock, type EpochStore, type TimerHandle } from '@gc/core';
import { createElectionOnStore, type CreateElectionOptions } from './election.js';
import { MemoryLeaseBackend, type MemoryLeaseStore } from './memory-store.js';
import type { LeaseEntry, LeaseStore, ProbeResult } from './store.js';
import type { Election, ElectionEvents, LeaseRecord } from './types.js';

/** The function under test: `createElectionOnStore` or a mutant of it. */
export type CreateOnStore = (store: LeaseStore, opts: CreateElectionOptions) => Promise<Election>;

/** Names of the invariants the simulation checks. */
export const Invariant = {
  /** At most one node acts as leader at any instant (acting: not paused and `isLeader()` true). */
  OneActingLeader: 'one-acting-leader',
  /** Grant intervals [send time of the grant, renew deadline or end) of different nodes never overlap in real time. */
  GrantOverlap: 'grant-overlap',
  /** Every announced grant has an epoch higher than every grant announced before it. */
  EpochOrder: 'epoch-order',
  /** `acquired` is emitted only for a grant that is current: `isLeader()` true, nothing newer delivered to the node. */
  AcquiredCurrent: 'acquired-current',
  /** No node believes it leads with an epoch lower than one already granted to another. */
  StaleEpochLeader: 'stale-epoch-leader',
  /** After the faults stop, some live node leads within a bound derived from the timings, and keeps leading. */
  Liveness: 'liveness',
} as const;
/** One of {@link Invariant}. */
export type InvariantName = (typeof Invariant)[keyof typeof Invariant];

/** Fault classes the scheduler injects. */
export const Fault = {
  Latency: 'latency',
  WatchLatency: 'watch-latency',
  Cut: 'cut',
  CutInFlight: 'cut-in-flight',
  Pause: 'pause',
  Crash: 'crash',
  StepDown: 'step-down',
  DeleteUnannounced: 'delete-unannounced',
  Marker: 'marker',
  Recreate: 'recreate',
  ServerRestart: 'server-restart',
  ServerRestartLossy: 'server-restart-lossy',
} as const;
/** One of {@link Fault}. */
export type FaultName = (typeof Fault)[keyof typeof Fault];

/** Relative weights of the faults (0 disables one). */
export const defaultFaultWeights: Readonly<Record<FaultName, number>> = {
  latency: 20,
  'watch-latency': 10,
  cut: 8,
  'cut-in-flight': 8,
  pause: 10,
  crash: 5,
  'step-down': 8,
  'delete-unannounced': 4,
  marker: 6,
  recreate: 3,
  'server-restart': 4,
  'server-restart-lossy': 0,
};

/** Options of {@link simulate}. */
export interface SimulationOptions {
  /** The seed: everything random in the run derives from it. */
  seed: number;
  /** Scheduler steps with faults, before the quiet tail that checks liveness. Default 600. */
  steps?: number;
  /** The election under test. Default `createElectionOnStore`. */
  create?: CreateOnStore;
  /** Fault weights merged over {@link defaultFaultWeights}. */
  faults?: Partial<Record<FaultName, number>>;
  /** Probability that a step injects a fault. Default 0.06. */
  faultRate?: number;
  /** Also trace every request a node sends and every entry handed to it (for reading a failing seed). */
  verbose?: boolean;
  /**
   * Bucket recreates come at least this many TTLs apart. Default 3. Two recreates within about a TTL can
   * erase a grant that another node never saw (it sees the key empty before and after), a documented limit
   * (README, "Deterministic simulation"); 0 lets the scheduler make such storms.
   */
  recreateGapTtls?: number;
  /** The nodes' `wallClockEpochFloor`. Default true (the election's default). */
  wallClockEpochFloor?: boolean;
}

/** A broken invariant: which, when (master time, ms) and what happened. */
export interface Violation {
  invariant: InvariantName;
  at: number;
  message: string;
}

/** Outcome of one seed. */
export interface SimulationResult {
  seed: number;
  /** The first violation (the run stops there), or undefined. */
  violation: Violation | undefined;
  /** Every fault, election event and store write, in order, one line each (no random ids: comparable). */
  trace: string[];
  /** One line describing the seed's configuration (node count, rates, timings). */
  config: string;
  stats: {
    simulatedMs: number;
    grants: number;
    faults: Partial<Record<FaultName, number>>;
    /** Faults stopped → some node leads, and the bound it was checked against (ms of master time). */
    recoveryMs: number | undefined;
    recoveryBoundMs: number | undefined;
  };
}

// ---------------------------------------------------------------------------------------------------------
// Seeded randomness.

export { Rng };

// ---------------------------------------------------------------------------------------------------------
// Configuration of a seed.

interface NodeTimings {
  ttlMs: number;
  renewIntervalMs: number;
  renewDeadlineMs: number;
  pollIntervalMs: number;
  opTimeoutMs: number;
  cooldownMs: number;
  priority: number;
}

/**
 * Every node's clock rate lies in [MIN_RATE, MAX_RATE]: a ratio of 1.22, below the smallest
 * ttl/renewDeadline a seed uses (1.25), which is the drift the election documents it tolerates.
 */
const MIN_RATE = 0.9;
const MAX_RATE = 1.1;
const MIN_SAFETY = 1.25;
const PRIORITY_STEP_MS = 50;

/**
 * Timings of one node. `minTtlMs` is the shortest TTL of all nodes: a deletion nobody announced may hide a grant
 * of any node, and a contender waits out its own TTL, so every node's renew deadline stays below every node's
 * TTL by the tolerated drift (the README's rule for mixed timings).
 */
function nodeTimings(rng: Rng, ttlMs: number, minTtlMs: number): NodeTimings {
  const renewDeadlineMs = Math.floor(minTtlMs / rng.float(MIN_SAFETY, 2.2));
  const renewIntervalMs = rng.int(Math.ceil(renewDeadlineMs / 4), Math.floor(renewDeadlineMs / 2));
  return {
    ttlMs,
    renewDeadlineMs,
    renewIntervalMs,
    opTimeoutMs: rng.int(
      Math.max(1, Math.round(renewIntervalMs / 4)),
      Math.min(renewDeadlineMs, 2 * renewIntervalMs),
    ),
    pollIntervalMs: rng.int(Math.max(10, Math.round(ttlMs / 12)), Math.round(ttlMs / 4)),
    cooldownMs: rng.int(0, renewIntervalMs),
    priority: rng.chance(0.7) ? 10 : rng.int(7, 9),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Nodes, their clocks and their links.

interface SimTimer {
  handle: TimerHandle | undefined;
  cancelled: boolean;
}

/**
 * One node process's clock: runs at `rate` times real (master) time from a random origin; timers fire
 * through the process, so that a paused process runs them late and a crashed one never.
 */
class NodeClock implements Clock {
  readonly #master: FakeClock;
  readonly #proc: Incarnation;
  readonly #masterOrigin: number;
  readonly #origin: number;
  readonly rate: number;
  readonly wallOffsetMs: number;

  constructor(master: FakeClock, proc: Incarnation, rate: number, origin: number, wallOffsetMs: number) {
    this.#master = master;
    this.#proc = proc;
    this.#masterOrigin = master.now();
    this.#origin = origin;
    this.rate = rate;
    this.wallOffsetMs = wallOffsetMs;
  }
  now(): number {
    return this.#origin + (this.#master.now() - this.#masterOrigin) * this.rate;
  }
  /** The master (real) time at which this clock shows `t`. */
  toMaster(t: number): number {
    return this.#masterOrigin + (t - this.#origin) / this.rate;
  }
  wallNow(): number {
    return this.#master.wallNow() + this.wallOffsetMs;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: SimTimer = { handle: undefined, cancelled: false };
    t.handle = this.#master.setTimeout(
      () => {
        if (!t.cancelled) this.#proc.deliver(() => t.cancelled || fn());
      },
      // A nanosecond more, so that the timer never fires before its time on this clock despite float rounding
      // of the rate conversion (a deadline timer that finds a few femtoseconds left would re-arm forever).
      Math.max(0, ms) / this.rate + 1e-6,
    );
    return t;
  }
  clearTimeout(handle: TimerHandle): void {
    const t = handle as SimTimer;
    t.cancelled = true;
    if (t.handle) this.#master.clearTimeout(t.handle);
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('sleep aborted'));
      const h = this.setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => (this.clearTimeout(h), reject(new Error('sleep aborted'))), {
        once: true,
      });
    });
  }
}

/**
 * A node's link to the store: the in-process store handle plus what the network adds — watch deliveries
 * with their own latency (in order), results handed to the process (late when it is paused, never when it
 * crashed), and cuts counted by reason (a fault, a server restart, a crash).
 */
class SimLink implements LeaseStore {
  readonly name: string;
  readonly #inner: MemoryLeaseStore;
  readonly #proc: Incarnation;
  readonly #sim: Simulation;
  readonly #cuts = new Map<string, number>();
  #watchLatencyMs = 0;
  #lastWatchDue = 0;
  /** When > 0, every watch delivery comes once more, up to this much later (possibly after newer ones). */
  #duplicateMs = 0;
  /** Requests sent on a healthy link whose result has not been handed over yet (targets of cut-in-flight). */
  readonly inFlight = new Set<object>();

  constructor(sim: Simulation, proc: Incarnation, inner: MemoryLeaseStore) {
    this.#sim = sim;
    this.#proc = proc;
    this.#inner = inner;
    this.name = inner.name;
  }

  get isCut(): boolean {
    return this.#cuts.size > 0;
  }
  cut(reason: string): void {
    this.#cuts.set(reason, (this.#cuts.get(reason) ?? 0) + 1);
    this.inFlight.clear();
    this.#inner.cut();
  }
  heal(reason: string, all = false): void {
    const n = (this.#cuts.get(reason) ?? 0) - 1;
    if (n > 0 && !all) this.#cuts.set(reason, n);
    else this.#cuts.delete(reason);
    if (this.#cuts.size === 0) this.#inner.heal();
  }
  setLatency(requestMs: number, replyMs: number): void {
    this.#inner.setLatency(requestMs, replyMs);
  }
  setWatchLatency(ms: number, duplicateMs = 0): void {
    this.#watchLatencyMs = ms;
    this.#duplicateMs = duplicateMs;
  }

  #call<T>(p: Promise<T>, onResult?: (v: T) => void): Promise<T> {
    const token = {};
    if (!this.isCut) this.inFlight.add(token);
    return new Promise<T>((resolve, reject) => {
      p.then(
        (v) =>
          this.#proc.deliver(() => {
            this.inFlight.delete(token);
            onResult?.(v);
            resolve(v);
          }),
        (err: unknown) =>
          this.#proc.deliver(() => {
            this.inFlight.delete(token);
            reject(err instanceof Error ? err : new Error(String(err)));
          }),
      );
    });
  }

  get(): Promise<LeaseEntry | null> {
    const generation = this.#sim.generation;
    this.#sim.detail(() => `${this.name} get sent${this.isCut ? ' (cut)' : ''}`);
    return this.#call(this.#inner.get(), (e) => {
      this.#sim.detail(() => `${this.name} get -> ${describeEntry(e)}`);
      if (e) this.#proc.delivered(e, generation);
    });
  }
  put(record: LeaseRecord, expectedRevision: number): Promise<number> {
    this.#sim.detail(
      () =>
        `${this.name} put e=${record.epoch} expecting rev ${expectedRevision}${this.isCut ? ' (cut)' : ''}`,
    );
    return this.#call(this.#inner.put(record, expectedRevision), (rev) =>
      this.#sim.detail(() => `${this.name} put -> rev ${rev}`),
    );
  }
  delete(expectedRevision: number, record: LeaseRecord): Promise<void> {
    this.#sim.detail(
      () => `${this.name} delete expecting rev ${expectedRevision}${this.isCut ? ' (cut)' : ''}`,
    );
    return this.#call(this.#inner.delete(expectedRevision, record));
  }
  watch(onEntry: (e: LeaseEntry) => void): () => void {
    let stopped = false;
    const master = this.#sim.master;
    const deliver = (e: LeaseEntry, generation: number, ms: number) =>
      master.setTimeout(() => {
        // Lost in flight; or the bucket was recreated (or lost writes in a restart) meanwhile: the watch
        // consumer died with its stream, and what it had not sent yet is never sent.
        if (stopped || this.isCut || generation !== this.#sim.generation) return;
        this.#proc.deliver(() => {
          if (stopped) return;
          this.#sim.detail(() => `${this.name} watch -> ${describeEntry(e)}`);
          this.#proc.delivered(e, generation);
          onEntry(e);
        });
      }, ms);
    const stop = this.#inner.watch((e) => {
      const generation = this.#sim.generation;
      const due = Math.max(this.#lastWatchDue, master.now() + this.#watchLatencyMs);
      this.#lastWatchDue = due;
      deliver(e, generation, due - master.now());
      // A restarted watch delivers the last entry again, maybe after newer ones reached the node by a poll.
      if (this.#duplicateMs > 0) {
        deliver(e, generation, due - master.now() + this.#sim.rng.float(0, this.#duplicateMs));
      }
    });
    return () => {
      stopped = true;
      stop();
    };
  }
  serveLiveness(epoch: () => number): () => void {
    return this.#inner.serveLiveness(epoch);
  }
  probe(): Promise<ProbeResult> {
    return this.#call(this.#inner.probe());
  }
  onReconnect(listener: () => void): () => void {
    return this.#inner.onReconnect(() => this.#proc.deliver(listener));
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
  closed(): Promise<void> {
    return this.#inner.closed();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function describeEntry(e: LeaseEntry | null): string {
  if (!e) return 'no entry';
  if (e.record) return `rev ${e.revision} ${e.record.holder} e=${e.record.epoch}`;
  return `rev ${e.revision} ${e.releasedEpoch === undefined ? 'deleted (unannounced)' : `released e=${e.releasedEpoch}`}`;
}

interface Grant {
  proc: Incarnation;
  epoch: number;
  revision: number;
  via: string;
  /** Master time the grant was sent. */
  start: number;
  /** Master time of its renew deadline (moves on with each renew). */
  deadline: number;
  /** Master time it ended (lost, stepped down, crashed); Infinity while it lasts. */
  end: number;
}

/** One process of a node: created at start or restart, gone at a crash. */
class Incarnation {
  readonly label: string;
  readonly node: SimNode;
  readonly clock: NodeClock;
  readonly link: SimLink;
  readonly #sim: Simulation;
  readonly #queue: Array<() => void> = [];
  election: Election | undefined;
  paused = false;
  crashed = false;
  grant: Grant | undefined;
  /** Highest revision (with the bucket generation it belongs to) and epoch handed to the election. */
  maxRevision = { generation: -1, revision: 0 };
  maxEpoch = 0;

  constructor(sim: Simulation, node: SimNode, n: number) {
    this.#sim = sim;
    this.node = node;
    this.label = `${node.id}#${n}`;
    const skew = sim.config.maxWallSkewMs;
    this.clock = new NodeClock(
      sim.master,
      this,
      node.rate,
      sim.rng.int(0, 100_000),
      sim.rng.float(-skew, skew),
    );
    this.link = new SimLink(sim, this, sim.backend.connect(this.label));
  }

  /** Runs `fn` as this process would: now, when resumed if it is paused (SIGSTOP), or never if it crashed. */
  deliver(fn: () => void): void {
    if (this.crashed) return;
    if (this.paused) {
      this.#queue.push(fn);
      return;
    }
    this.#sim.beforeCallback();
    if (this.#sim.stalled()) return;
    fn();
  }

  /** SIGCONT: what became due while stopped runs now, in the order it became due, one callback at a time. */
  resume(): void {
    this.paused = false;
    for (const fn of this.#queue.splice(0)) this.#sim.master.setTimeout(() => this.deliver(fn), 0);
  }

  delivered(e: LeaseEntry, generation: number): void {
    if (generation === this.#sim.generation) {
      if (this.maxRevision.generation !== generation) this.maxRevision = { generation, revision: 0 };
      this.maxRevision.revision = Math.max(this.maxRevision.revision, e.revision);
    }
    this.maxEpoch = Math.max(this.maxEpoch, e.record?.epoch ?? 0, e.releasedEpoch ?? 0);
  }

  /** Believes it leads (whatever its pause state). */
  believesLeader(): boolean {
    return !this.crashed && this.election !== undefined && this.election.isLeader();
  }
  acting(): boolean {
    return !this.paused && this.believesLeader();
  }
}

/** A machine: its clock rate, timings and durable epoch store outlive its processes. */
interface SimNode {
  id: string;
  rate: number;
  timings: NodeTimings;
  epochStore: EpochStore;
  proc: Incarnation;
  restarts: number;
}

interface SimConfig {
  nodes: number;
  rates: number[];
  timings: NodeTimings[];
  wallClockEpochFloor: boolean;
  maxWallSkewMs: number;
}

const round = (t: number) => Math.round(t * 1000) / 1000;

class Simulation {
  readonly master = new FakeClock(0);
  readonly backend = new MemoryLeaseBackend(this.master);
  readonly rng: Rng;
  readonly config: SimConfig;
  readonly trace: string[] = [];
  /** Bumped when revisions restart or are reused (bucket recreated, writes lost): comparisons across it are void. */
  generation = 0;
  violation: Violation | undefined;
  readonly #o: Required<Omit<SimulationOptions, 'faults'>> & { faults: Record<FaultName, number> };
  readonly #nodes: SimNode[] = [];
  readonly #grants: Grant[] = [];
  readonly #faults: Partial<Record<FaultName, number>> = {};
  #phase: 'faults' | 'tail' = 'faults';
  #serverDown = false;
  #lastRecreate = -Infinity;
  #writesSeen = 0;
  #instant = -1;
  #callbacksAtInstant = 0;
  /** Largest one-way request + reply latency and watch latency set during the run. */
  #maxLatencyMs = 0;
  readonly #baseTtl: number;

  constructor(o: SimulationOptions) {
    this.#o = {
      seed: o.seed,
      steps: o.steps ?? 600,
      create: o.create ?? createElectionOnStore,
      faultRate: o.faultRate ?? 0.06,
      verbose: o.verbose ?? false,
      recreateGapTtls: o.recreateGapTtls ?? 3,
      wallClockEpochFloor: o.wallClockEpochFloor ?? true,
      faults: { ...defaultFaultWeights, ...o.faults },
    };
    this.rng = new Rng(o.seed);
    const nodes = this.rng.int(3, 5);
    const baseTtl = (this.#baseTtl = this.rng.int(500, 3000));
    const hetero = this.rng.chance(0.3);
    const ttls = Array.from({ length: nodes }, () =>
      hetero ? Math.round(baseTtl * this.rng.float(0.75, 1.5)) : baseTtl,
    );
    const timings = ttls.map((ttl) => nodeTimings(this.rng, ttl, Math.min(...ttls)));
    this.config = {
      nodes,
      rates: Array.from({ length: nodes }, () => this.rng.float(MIN_RATE, MAX_RATE)),
      timings,
      wallClockEpochFloor: this.#o.wallClockEpochFloor,
      maxWallSkewMs: Math.round(baseTtl / 10),
    };
  }

  describe(): string {
    const c = this.config;
    const nodes = c.timings.map(
      (t, i) =>
        `n${i}: rate ${c.rates[i]!.toFixed(3)} ttl ${t.ttlMs} renew ${t.renewIntervalMs} deadline ${t.renewDeadlineMs} poll ${t.pollIntervalMs} op ${t.opTimeoutMs} cooldown ${t.cooldownMs} prio ${t.priority}`,
    );
    return `seed ${this.#o.seed}: ${c.nodes} nodes, wall skew ±${c.maxWallSkewMs} ms, epoch floor ${c.wallClockEpochFloor}; ${nodes.join('; ')}`;
  }

  /** Traces `msg` in verbose runs only. */
  detail(msg: () => string): void {
    if (this.#o.verbose) this.#log(msg());
  }

  #log(msg: string): void {
    this.trace.push(`${round(this.master.now())} ${msg}`);
  }

  #fail(invariant: InvariantName, message: string): void {
    if (this.violation) return;
    this.violation = { invariant, at: this.master.now(), message };
    this.#log(`VIOLATION ${invariant}: ${message}`);
  }

  #syncWrites(): void {
    const w = this.backend.writes;
    for (; this.#writesSeen < w.length; this.#writesSeen++) {
      const { at, entry: e } = w[this.#writesSeen]!;
      this.trace.push(`${round(at)} store ${describeEntry(e)}`);
    }
  }

  // ----- invariants -----------------------------------------------------------------------------------

  #procs(): Incarnation[] {
    return this.#nodes.map((n) => n.proc);
  }

  /** Checked before any node runs a callback (so after every event) and after every scheduler step. */
  beforeCallback(): void {
    const now = this.master.now();
    if (now !== this.#instant) {
      this.#instant = now;
      this.#callbacksAtInstant = 0;
    } else if (++this.#callbacksAtInstant === 100_000) {
      this.#fail(Invariant.Liveness, 'livelock: 100000 callbacks without time passing');
    }
    this.#syncWrites();
    if (this.violation) return;
    const acting = this.#procs().filter((p) => p.acting());
    if (acting.length > 1) {
      this.#fail(
        Invariant.OneActingLeader,
        `${acting.map((p) => `${p.label} (epoch ${p.election!.epoch()})`).join(' and ')} act as leader at once`,
      );
      return;
    }
    for (const p of this.#procs()) {
      if (!p.believesLeader()) continue;
      const epoch = p.election!.epoch();
      const higher = this.#grants.find((g) => g.proc.node !== p.node && g.epoch > epoch);
      if (higher) {
        this.#fail(
          Invariant.StaleEpochLeader,
          `${p.label} believes it leads with epoch ${epoch}, lower than ${higher.epoch} granted to ${higher.proc.label}`,
        );
        return;
      }
    }
  }

  /** True once a livelock was detected: callbacks stop running so that the run can end. */
  stalled(): boolean {
    return this.#callbacksAtInstant >= 100_000;
  }

  #checkOverlap(g: Grant): void {
    const end = (x: Grant) => Math.min(x.deadline, x.end);
    for (const h of this.#grants) {
      if (h === g || h.proc === g.proc) continue;
      const from = Math.max(g.start, h.start);
      const to = Math.min(end(g), end(h));
      if (from < to - 1e-6) {
        this.#fail(
          Invariant.GrantOverlap,
          `grant ${h.proc.label}@${h.epoch} [${round(h.start)}, ${round(end(h))}) overlaps ${g.proc.label}@${g.epoch} [${round(g.start)}, ${round(end(g))})`,
        );
      }
    }
  }

  #onAcquired(p: Incarnation, d: ElectionEvents['acquired']): void {
    this.#syncWrites();
    this.#log(`${p.label} acquired epoch ${d.epoch} rev ${d.revision} via ${d.via}`);
    if (!p.election!.isLeader()) {
      this.#fail(
        Invariant.AcquiredCurrent,
        `${p.label} announced epoch ${d.epoch} while isLeader() is false`,
      );
    }
    if (p.maxRevision.generation === this.generation && p.maxRevision.revision > d.revision) {
      this.#fail(
        Invariant.AcquiredCurrent,
        `${p.label} announced rev ${d.revision} after revision ${p.maxRevision.revision} was delivered to it`,
      );
    }
    if (p.maxEpoch > d.epoch) {
      this.#fail(
        Invariant.AcquiredCurrent,
        `${p.label} announced epoch ${d.epoch} after epoch ${p.maxEpoch} was delivered to it`,
      );
    }
    const before = this.#grants.reduce<Grant | undefined>(
      (m, g) => (!m || g.epoch > m.epoch ? g : m),
      undefined,
    );
    if (before && d.epoch <= before.epoch) {
      this.#fail(
        Invariant.EpochOrder,
        `${p.label} granted epoch ${d.epoch}, not above ${before.epoch} granted to ${before.proc.label}`,
      );
    }
    const g: Grant = {
      proc: p,
      epoch: d.epoch,
      revision: d.revision,
      via: d.via,
      start: p.clock.toMaster(d.sentAt),
      deadline: p.clock.toMaster(d.deadline),
      end: Infinity,
    };
    this.#grants.push(g);
    p.grant = g;
    this.#checkOverlap(g);
    this.beforeCallback();
    // Leaders that step down soon after a grant make quick hand-overs, where epochs are closest.
    if (this.#phase === 'faults' && this.rng.chance(0.1)) {
      this.master.setTimeout(() => this.#stepDown(p), this.rng.float(0, this.#baseTtl / 4));
    }
  }

  #attach(p: Incarnation, e: Election): void {
    p.election = e;
    e.on('acquired', (d) => this.#onAcquired(p, d));
    e.on('renewed', (d) => {
      this.#log(`${p.label} renewed rev ${d.revision}`);
      if (!p.grant) return;
      p.grant.deadline = Math.max(p.grant.deadline, p.clock.toMaster(d.deadline));
      this.#checkOverlap(p.grant);
    });
    e.on('lost', (d) => this.#log(`${p.label} lost epoch ${d.epoch}: ${d.reason}`));
    e.on('stepped-down', (d) =>
      this.#log(`${p.label} stepped down from ${d.epoch} (released ${d.released})`),
    );
    e.on('state', ({ from }) => {
      if (from !== 'leader' || !p.grant) return;
      p.grant.end = Math.min(p.grant.end, this.master.now());
      p.grant = undefined;
    });
  }

  // ----- processes -------------------------------------------------------------------------------------

  #start(node: SimNode): void {
    const p = new Incarnation(this, node, node.restarts++);
    node.proc = p;
    if (this.#serverDown) p.link.cut('server');
    this.#setLatency(p, 'fast');
    this.#log(`${p.label} starts (wall offset ${round(p.clock.wallOffsetMs)} ms)`);
    const t = node.timings;
    this.#o
      .create(p.link, {
        bucket: 'sim',
        nodeId: node.id,
        clock: p.clock,
        epochStore: node.epochStore,
        wallClockEpochFloor: this.config.wallClockEpochFloor,
        priorityStepMs: PRIORITY_STEP_MS,
        ...t,
      })
      .then(
        (e) => this.#attach(p, e),
        (err: unknown) => this.#fail(Invariant.Liveness, `${p.label} failed to start: ${String(err)}`),
      );
  }

  #crash(p: Incarnation): void {
    if (p.crashed) return;
    p.crashed = true;
    p.link.cut('crash');
    if (p.grant) p.grant.end = Math.min(p.grant.end, this.master.now());
    this.#log(`${p.label} crashes`);
  }

  #stepDown(p: Incarnation): void {
    if (this.#phase !== 'faults' || p.paused || p.crashed || !p.election?.isLeader()) return;
    this.#log(`${p.label} steps down`);
    void p.election.stepDown();
  }

  #setLatency(p: Incarnation, regime: 'fast' | 'normal' | 'slow' | 'asymmetric' | 'huge'): void {
    const op = p.node.timings.opTimeoutMs;
    const ttl = p.node.timings.ttlMs;
    const r = this.rng;
    let req: number;
    let rep: number;
    switch (regime) {
      case 'fast':
        [req, rep] = [r.float(0, 3), r.float(0, 3)];
        break;
      case 'normal':
        [req, rep] = [r.float(0, 20), r.float(0, 20)];
        break;
      case 'slow':
        [req, rep] = [r.float(0, op * 0.6), r.float(0, op * 0.6)];
        break;
      case 'asymmetric':
        [req, rep] = r.chance(0.5)
          ? [r.float(0, 3), r.float(op * 0.3, op * 1.5)]
          : [r.float(op * 0.3, op * 1.5), r.float(0, 3)];
        break;
      case 'huge':
        [req, rep] = [r.float(ttl / 2, 2 * ttl), r.float(0, 2 * ttl)];
        break;
    }
    p.link.setLatency(req, rep);
    this.#maxLatencyMs = Math.max(this.#maxLatencyMs, req + rep);
    if (regime !== 'fast') this.#log(`${p.label} latency ${round(req)}/${round(rep)} ms (${regime})`);
  }

  #setWatchLatency(p: Incarnation, regime: 'fast' | 'normal' | 'slow' | 'huge' | 'duplicating'): void {
    const ttl = p.node.timings.ttlMs;
    const r = this.rng;
    const ms = {
      fast: () => r.float(0, 3),
      normal: () => r.float(0, 30),
      duplicating: () => r.float(0, 30),
      slow: () => r.float(0, ttl / 3),
      huge: () => r.float(ttl / 2, 2 * ttl),
    }[regime]();
    const duplicateMs = regime === 'duplicating' ? ttl / 4 : 0;
    p.link.setWatchLatency(ms, duplicateMs);
    this.#maxLatencyMs = Math.max(this.#maxLatencyMs, ms + duplicateMs);
    if (regime !== 'fast') this.#log(`${p.label} watch latency ${round(ms)} ms (${regime})`);
  }

  // ----- the scheduler ---------------------------------------------------------------------------------

  /** A live process: the current leader with probability `leaderBias`, else any. */
  #target(leaderBias: number): Incarnation | undefined {
    const live = this.#procs().filter((p) => !p.crashed);
    const leader = live.find((p) => p.election?.isLeader());
    if (leader && this.rng.chance(leaderBias)) return leader;
    return live.length ? this.rng.pick(live) : undefined;
  }

  #later(ms: number, fn: () => void): void {
    this.master.setTimeout(fn, ms);
  }

  #inject(): void {
    const kind = this.rng.weighted(this.#o.faults);
    const ttl = this.#baseTtl;
    const r = this.rng;
    const count = () => (this.#faults[kind] = (this.#faults[kind] ?? 0) + 1);
    switch (kind) {
      case Fault.Latency: {
        const p = this.#target(0.3);
        if (!p) return;
        count();
        this.#setLatency(p, r.pick(['fast', 'normal', 'slow', 'asymmetric', 'asymmetric', 'huge'] as const));
        return;
      }
      case Fault.WatchLatency: {
        const p = this.#target(0.2);
        if (!p) return;
        count();
        this.#setWatchLatency(p, r.pick(['fast', 'normal', 'slow', 'huge', 'duplicating'] as const));
        return;
      }
      case Fault.Cut:
      case Fault.CutInFlight: {
        const candidates = this.#procs().filter(
          (p) => !p.crashed && (kind === Fault.Cut || (!p.link.isCut && p.link.inFlight.size > 0)),
        );
        if (!candidates.length) return;
        const p = kind === Fault.Cut ? (this.#target(0.5) ?? r.pick(candidates)) : r.pick(candidates);
        const ms = kind === Fault.Cut ? r.float(0.05, 2.5) * ttl : r.float(1, ttl / 2);
        count();
        this.#log(
          `${p.label} link cut for ${round(ms)} ms${kind === Fault.CutInFlight ? ' (replies in flight)' : ''}`,
        );
        p.link.cut('fault');
        this.#later(ms, () => {
          if (p.crashed) return;
          this.#log(`${p.label} link healed`);
          p.link.heal('fault');
        });
        return;
      }
      case Fault.Pause: {
        const p = this.#target(0.6);
        if (!p || p.paused) return;
        const ms = r.float(0.05, 2.5) * ttl;
        count();
        this.#log(`${p.label} paused for ${round(ms)} ms`);
        p.paused = true;
        this.#later(ms, () => {
          if (p.crashed || !p.paused) return;
          this.#log(`${p.label} resumed`);
          p.resume();
          this.beforeCallback(); // isLeader() at resume time, before anything it queued runs
        });
        return;
      }
      case Fault.Crash: {
        const p = this.#target(0.6);
        if (!p) return;
        count();
        this.#crash(p);
        if (r.chance(0.8)) this.#later(r.float(0, 3 * ttl), () => this.#restart(p.node));
        return;
      }
      case Fault.StepDown: {
        const leader = this.#procs().find((p) => p.acting());
        if (!leader) return;
        count();
        this.#stepDown(leader);
        return;
      }
      case Fault.DeleteUnannounced:
        count();
        this.#log(`server: unannounced deletion`);
        this.backend.deleteUnannounced();
        return;
      case Fault.Marker:
        count();
        this.#log(`server: TTL marker armed after the next update (issue 18)`);
        this.backend.markerAfterNextUpdate();
        return;
      case Fault.Recreate:
        if (this.master.now() - this.#lastRecreate < this.#o.recreateGapTtls * ttl) return;
        this.#lastRecreate = this.master.now();
        count();
        this.#log(`server: bucket deleted and recreated`);
        this.backend.recreate();
        this.generation++;
        return;
      case Fault.ServerRestart:
      case Fault.ServerRestartLossy: {
        if (this.#serverDown) return;
        count();
        const crashedAt = this.master.now();
        const downMs = r.float(1, ttl);
        const lossWindowMs = kind === Fault.ServerRestartLossy ? r.float(0, ttl / 5) : undefined;
        this.#log(
          `server: restart, down ${round(downMs)} ms${lossWindowMs === undefined ? '' : `, loses writes of the last ${round(lossWindowMs)} ms`}`,
        );
        this.#serverDown = true;
        for (const p of this.#procs()) p.link.cut('server');
        this.#later(downMs, () => this.#serverUp(crashedAt, lossWindowMs));
        return;
      }
    }
  }

  #serverUp(crashedAt: number, lossWindowMs: number | undefined): void {
    if (!this.#serverDown) return;
    this.#serverDown = false;
    for (const p of this.#procs()) p.link.heal('server', true);
    const lost = this.backend.restart(
      lossWindowMs === undefined ? {} : { loseWritesAfter: crashedAt - lossWindowMs },
    );
    if (lost > 0) this.generation++;
    this.#log(`server: up again${lossWindowMs === undefined ? '' : `, ${lost} write(s) lost`}`);
  }

  #restart(node: SimNode): void {
    if (!node.proc.crashed) return;
    this.#start(node);
  }

  /** Faults stop: links heal, processes resume, crashed nodes restart; some node must lead within the bound. */
  async #tail(): Promise<{ recoveryMs: number | undefined; boundMs: number }> {
    this.#phase = 'tail';
    const tf = this.master.now();
    this.#log('faults stop');
    this.backend.markerAfterNextUpdate(false);
    if (this.#serverDown) this.#serverUp(tf, undefined);
    for (const node of this.#nodes) {
      const p = node.proc;
      if (p.crashed) {
        this.#start(node);
        continue;
      }
      p.link.heal('fault', true);
      if (p.paused) p.resume();
      this.#setLatency(p, 'fast');
      this.#setWatchLatency(p, 'fast');
    }
    // Requests and watch deliveries already in flight may land until `quiesce`. From then on, every follower
    // sees the current entry within an op timeout and a poll interval (a poll hung before the faults stopped
    // times out, the next one is a poll interval later) and takes over after at most the longest TTL (a dead
    // holder's revision, or a deletion nobody announced), a cooldown or a priority delay; an attempt that
    // timed out is retried a poll interval later. Every duration on a node's clock is divided by the slowest
    // rate; round trips in the quiet tail take at most 6 ms, and a few are needed.
    const t = this.config.timings;
    const max = (f: (x: NodeTimings) => number) => Math.max(...t.map(f));
    const boundMs =
      this.#maxLatencyMs +
      (max((x) => x.opTimeoutMs) +
        2 * max((x) => x.pollIntervalMs) +
        max((x) => x.ttlMs) +
        max((x) => x.cooldownMs)) /
        MIN_RATE +
      3 * PRIORITY_STEP_MS +
      10 * 6;
    const step = Math.max(1, Math.min(...t.map((x) => x.pollIntervalMs)) / 4);
    let recoveryMs: number | undefined;
    while (!this.violation && this.master.now() - tf < boundMs) {
      await this.master.advance(step);
      this.beforeCallback();
      if (recoveryMs === undefined && this.#procs().some((p) => p.acting()))
        recoveryMs = this.master.now() - tf;
    }
    if (this.violation) return { recoveryMs, boundMs };
    // The first leader of the tail may hold a grant that a fault already removed (it learns so at its next
    // poll), so what must hold is: a leader by the bound, and the same one a TTL later — nothing fails any more.
    const leader = this.#procs().find((p) => p.acting());
    if (!leader) {
      this.#fail(Invariant.Liveness, `no leader ${round(boundMs)} ms after the faults stopped`);
      return { recoveryMs, boundMs };
    }
    this.#log(
      `leader ${leader.label} (first one after ${round(recoveryMs!)} ms, bound ${round(boundMs)} ms)`,
    );
    const until = this.master.now() + max((x) => x.ttlMs);
    while (!this.violation && this.master.now() < until) {
      await this.master.advance(step);
      this.beforeCallback();
    }
    if (!this.violation && !leader.acting()) {
      this.#fail(Invariant.Liveness, `${leader.label} stopped leading although nothing failed any more`);
    }
    return { recoveryMs, boundMs };
  }

  async run(): Promise<SimulationResult> {
    this.#log(this.describe());
    for (let i = 0; i < this.config.nodes; i++) {
      const node = {
        id: `n${i}`,
        rate: this.config.rates[i]!,
        timings: this.config.timings[i]!,
        epochStore: memoryEpochStore(),
        restarts: 0,
      } as SimNode;
      this.#nodes.push(node);
      this.#start(node);
    }
    const maxStep = Math.max(2, Math.round(this.#baseTtl / 25));
    await this.master.advance(0);
    for (let i = 0; i < this.#o.steps && !this.violation; i++) {
      if (this.rng.chance(this.#o.faultRate)) this.#inject();
      await this.master.advance(this.rng.int(1, maxStep));
      this.beforeCallback();
    }
    let tail: { recoveryMs: number | undefined; boundMs: number } | undefined;
    if (!this.violation) tail = await this.#tail();
    this.#syncWrites();
    // Stop every process: nothing of this run may run on.
    for (const n of this.#nodes) n.proc.crashed = true;
    return {
      seed: this.#o.seed,
      violation: this.violation,
      trace: this.trace,
      config: this.describe(),
      stats: {
        simulatedMs: this.master.now(),
        grants: this.#grants.length,
        faults: this.#faults,
        recoveryMs: tail?.recoveryMs,
        recoveryBoundMs: tail?.boundMs,
      },
    };
  }
}

/** Runs one seed of the simulation. */
export function simulate(o: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(o).run();
}

/** The failure report of a seed: what broke, the replay command, the configuration and the trace's end. */
export function formatFailure(r: SimulationResult, lastLines = 150): string {
  const v = r.violation!;
  const trace = r.trace.length > lastLines ? ['…', ...r.trace.slice(-lastLines)] : r.trace;
  return [
    `R16 simulation: invariant ${v.invariant} broken at ${round(v.at)} ms (seed ${r.seed}): ${v.message}`,
    `replay: GC_SEED=${r.seed} pnpm exec vitest run --project @gc/election src/simulation.test.ts`,
    r.config,
    ...trace,
  ].join('\n');
}
