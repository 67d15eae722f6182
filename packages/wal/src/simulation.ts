// R16: a deterministic simulation of the replication protocol. A test facility, exported from nowhere:
// `simulation.test.ts` runs it over many seeds, against the real decisions and against mutants of them.
//
// What runs is the real decision code of `decisions.ts` — where the history ends (`tipFrom`), how far a trim
// may go (`trimPoint`), whether a new primary may publish its database (`continuity`) and from which txid it
// counts on (`startTxid`), whether a replica may apply the next transaction (`checkNext`) — called at the
// points where the real primary, replica, snapshotter and promotion call it. Around it, the I/O is modeled:
// a database is a set of commit ids (its checksum the XOR of their hashes, like the page checksum), the WAL
// stream a list of messages with sequences, a trim point and fenced appends, snapshots a list with
// retention. Nodes commit, capture, publish, replicate, snapshot and trim; a seeded scheduler interleaves
// that with the faults operators meet — graceful step-down, crash (unpublished commits stay in the dead
// node's file), restart, full restart of every node (with commits made by another process meanwhile, and
// the old primary starting directly on its file, as a library user does), an operator's purge of the
// stream. Invariants are checked after every step. The same seed gives the same run, step for step.
//
// Assumed, not simulated: the election's guarantee (at most one acting leader; R16 of @gc/election checks
// it), so a new primary starts after the previous one stopped publishing.

import { formatChecksum } from '@gc/sqlite';
import { Rng } from '@gc/testkit';
import type * as RealDecisions from './decisions.js';
import type { HistoryTip, SnapshotLike, StreamTip } from './stream.js';
import { TxKind, type TxKindValue } from './wire.js';

/** The decision functions under test: `decisions.ts` or a mutant of it. */
export type Decisions = Pick<
  typeof RealDecisions,
  'tipFrom' | 'trimPoint' | 'continuity' | 'startTxid' | 'checkNext' | 'promotionRefusal'
>;

/** Names of the invariants the simulation checks. */
export const Invariant = {
  /** Every commit acknowledged by the stream is in the history's tip state (stream tip, else newest snapshot). */
  NoAckedLoss: 'no-acked-loss',
  /** A txid, once in the history with a checksum, never comes back with another (txids never start over). */
  TxidUnique: 'txid-unique',
  /** A replica that applied txid N holds exactly the state the history has at N. */
  ReplicaMatches: 'replica-matches',
  /** After the faults stop, every live replica reaches the tip or says it is stalled (and why). */
  NoSilentStall: 'no-silent-stall',
} as const;
/** One of {@link Invariant}. */
export type InvariantName = (typeof Invariant)[keyof typeof Invariant];

/** What the scheduler does in one step. */
export const Op = {
  Commit: 'commit',
  Publish: 'publish',
  Replicate: 'replicate',
  Snapshot: 'snapshot',
  StepDown: 'step-down',
  Crash: 'crash',
  Restart: 'restart',
  FullRestart: 'full-restart',
  Purge: 'purge',
} as const;
/** One of {@link Op}. */
export type OpName = (typeof Op)[keyof typeof Op];

/** Relative weights of the operations (0 disables one). */
export const defaultOpWeights: Readonly<Record<OpName, number>> = {
  commit: 30,
  publish: 25,
  replicate: 30,
  snapshot: 6,
  'step-down': 4,
  crash: 4,
  restart: 6,
  'full-restart': 2,
  purge: 1,
};

/** Options of {@link simulate}. */
export interface SimulationOptions {
  seed: number;
  /** Steps with faults, then a quiet phase that lets everything settle. Default 300. */
  steps?: number;
  /** Nodes (2–5). Default: 3 (the seed may pick 2–4 when `nodes` is not given). */
  nodes?: number;
  ops?: Partial<Record<OpName, number>>;
  /** The decisions under test. Default: the real ones. */
  decisions: Decisions;
}

/** Outcome of one seed. */
export interface SimulationResult {
  seed: number;
  /** The first invariant violated, with what the model saw. */
  violation?: { invariant: InvariantName; step: number; detail: string };
  /** One line per step (operation, outcome). */
  trace: string[];
  stats: {
    commits: number;
    /** Commits acknowledged over the run. */
    acked: number;
    publishes: number;
    fulls: number;
    refusedStarts: number;
    bootstraps: number;
    stalls: number;
    leaders: number;
  };
}

// ----- the modeled database ----------------------------------------------------------------------------------

/** A database state: the commits it holds. Its checksum is the XOR of their hashes (order-free, like pages). */
class Db {
  readonly commits: Set<number>;
  checksum = 0n;
  constructor(commits: Iterable<number> = []) {
    this.commits = new Set();
    for (const c of commits) this.add(c);
  }
  add(c: number): void {
    if (this.commits.has(c)) return;
    this.commits.add(c);
    this.checksum ^= commitHash(c);
  }
  /** Size in pages: 0 for an empty database, as a file never written. */
  get pages(): number {
    return this.commits.size === 0 ? 0 : this.commits.size + 1;
  }
  clone(): Db {
    const d = new Db();
    for (const c of this.commits) d.commits.add(c);
    d.checksum = this.checksum;
    return d;
  }
}

/** splitmix64 of the commit id: distinct commits, distinct hashes. */
function commitHash(c: number): bigint {
  let z = (BigInt(c) + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  return (z ^ (z >> 31n)) | 1n;
}

// ----- the modeled stream and snapshots ----------------------------------------------------------------------

interface Msg {
  seq: number;
  kind: TxKindValue;
  txid: number;
  txs: number;
  epoch: number;
  before: bigint;
  after: bigint;
  dbPages: number;
  /** What a replica applies: the commits added (tx) or the whole state (full). */
  added: number[];
  /** The model's own record of the state after the message (what the primary held). Decisions never see it. */
  state: Db;
}

interface Snap extends SnapshotLike {
  state: Db;
}

const PAGE = 4096;

// ----- nodes ---------------------------------------------------------------------------------------------------

interface Primary {
  epoch: number;
  /** The data-path file: commits land here first. */
  captured: Db;
  capturedTxid: number;
  /** Captured, not yet acknowledged. */
  queue: Omit<Msg, 'seq'>[];
  /** The stream's last sequence this primary appended after (its expected last sequence). */
  lastSeq: number;
}

interface SimNode {
  id: string;
  up: boolean;
  /** The database at the data path (a primary's file; what a former primary left there). */
  data: Db | undefined;
  /** The primary sidecar next to it: what this node's primary last saw acknowledged. */
  sidecar: { txid: number; checksum: string; leaderEpoch: number } | undefined;
  /** The replica's copy and position (txid, seq, epoch, checksum). */
  replica: { db: Db; txid: number; seq: number; epoch: number } | undefined;
  /** A refusal the replica already bootstrapped for once (one bootstrap per cause). */
  refusedOnce: string | undefined;
  stalled: string | undefined;
  primary: Primary | undefined;
}

// ----- the simulation ------------------------------------------------------------------------------------------

/** Runs one seed. Deterministic: the same options give the same result. */
export function simulate(o: SimulationOptions): SimulationResult {
  const rng = new Rng(o.seed);
  const d = o.decisions;
  const steps = o.steps ?? 300;
  const nodeCount = o.nodes ?? rng.int(2, 4);
  const weights = { ...defaultOpWeights, ...o.ops };
  const trace: string[] = [];
  const stats: SimulationResult['stats'] = {
    commits: 0,
    acked: 0,
    publishes: 0,
    fulls: 0,
    refusedStarts: 0,
    bootstraps: 0,
    stalls: 0,
    leaders: 0,
  };
  let violation: SimulationResult['violation'];
  let step = 0;
  const fail = (invariant: InvariantName, detail: string): void => {
    violation ??= { invariant, step, detail };
  };
  const log = (line: string): void => {
    trace.push(`${step} ${line}`);
  };

  // The stream: messages still held (seq >= firstSeq), the last sequence ever used.
  let msgs: Msg[] = [];
  let lastSeq = 0;
  let firstSeq = 1;
  const snaps: Snap[] = [];
  /** Every txid the history ever held, with its checksum (for TxidUnique and ReplicaMatches). */
  const history = new Map<number, bigint>();
  /** Commits acknowledged by the stream (a `sync()` returned for them). */
  const acked = new Set<number>();
  let nextCommit = 1;
  /** An operator purged the stream and nothing was published since. */
  let purged = false;
  let maxEpoch = 0;

  const nodes: SimNode[] = Array.from({ length: nodeCount }, (_, i) => ({
    id: `n${i}`,
    up: true,
    data: undefined,
    sidecar: undefined,
    replica: { db: new Db(), txid: 0, seq: 0, epoch: 0 },
    refusedOnce: undefined,
    stalled: undefined,
    primary: undefined,
  }));

  const streamTip = (): StreamTip => {
    const last = msgs.at(-1);
    return {
      seq: lastSeq,
      txid: last?.txid ?? 0,
      epoch: last?.epoch ?? 0,
      kind: last?.kind,
      after: last?.after ?? 0n,
      chunk: last ? '0/1' : '',
      msgId: '',
      timeMs: 0,
      firstSeq,
      completeSeq: last?.seq ?? 0,
      lastEpoch: last?.epoch ?? 0,
      completeFirstSeq: last?.seq ?? 0,
      dbPages: last?.dbPages ?? 0,
      pageSizeBytes: last ? PAGE : 0,
      created: 'sim',
    };
  };
  const newestSnap = (): Snap | undefined => snaps.at(-1);
  const tip = (): HistoryTip => d.tipFrom(streamTip(), newestSnap());
  /** The state at the history's tip: the last held message's, or the newest snapshot's. */
  const tipState = (): Db | undefined => {
    const t = tip();
    if (t.source === 'stream') return msgs.at(-1)!.state;
    if (t.source === 'snapshot') return newestSnap()!.state;
    return undefined;
  };

  const record = (m: Msg): void => {
    const seen = history.get(m.txid);
    if (seen !== undefined && seen !== m.after) {
      fail(
        Invariant.TxidUnique,
        `seq ${m.seq} (${m.kind}, epoch ${m.epoch}) gives txid ${m.txid} checksum ${formatChecksum(m.after)}; the history had ${formatChecksum(seen)} for it`,
      );
    }
    history.set(m.txid, m.after);
  };

  const leader = (): SimNode | undefined => nodes.find((n) => n.up && n.primary);

  // --- primary ---

  /** A primary starts on `file` (its data path), as `resumeFromTip` does; false when it refuses. */
  const startPrimary = (
    n: SimNode,
    file: Db,
    how: string,
    unproven: 'refuse' | 'publish' = 'refuse',
    minTxid = 0,
  ): boolean => {
    const t = tip();
    const epoch = ++maxEpoch;
    let decision: { publish: 'none' | 'full'; reason: string };
    try {
      decision = d.continuity({
        path: `${n.id}/app.db`,
        tip: t,
        local: file.checksum,
        localPages: file.pages,
        sidecar: n.sidecar,
        unprovenState: unproven,
      });
    } catch (err) {
      stats.refusedStarts++;
      log(`${n.id} refuses to lead (${how}): ${(err as Error).message.slice(0, 120)}`);
      return false;
    }
    const base = d.startTxid({
      tip: t,
      local: file.checksum,
      sidecar: n.sidecar,
      publish: decision.publish,
      minTxid,
    });
    const p: Primary = { epoch, captured: file, capturedTxid: base, queue: [], lastSeq };
    if (decision.publish === 'full') {
      p.capturedTxid++;
      p.queue.push({
        kind: TxKind.Full,
        txid: p.capturedTxid,
        txs: 1,
        epoch,
        before: t.checksum,
        after: file.checksum,
        dbPages: file.pages,
        added: [...file.commits],
        state: file.clone(),
      });
    } else if (t.epoch < epoch || t.source === 'snapshot') {
      // The new epoch's marker: no pages, one txid (it fences the previous leader).
      p.capturedTxid++;
      p.queue.push({
        kind: TxKind.Epoch,
        txid: p.capturedTxid,
        txs: 1,
        epoch,
        before: file.checksum,
        after: file.checksum,
        dbPages: file.pages,
        added: [],
        state: file.clone(),
      });
    }
    n.primary = p;
    n.data = file;
    n.replica = undefined;
    n.stalled = undefined;
    stats.leaders++;
    log(
      `${n.id} leads epoch ${epoch} (${how}) from txid ${base}: ${decision.publish === 'full' ? `full (${decision.reason.slice(0, 60)})` : 'at the tip'}`,
    );
    return true;
  };

  const commit = (n: SimNode): void => {
    const p = n.primary!;
    const c = nextCommit++;
    stats.commits++;
    const before = p.captured.checksum;
    p.captured.add(c);
    p.capturedTxid++;
    p.queue.push({
      kind: TxKind.Tx,
      txid: p.capturedTxid,
      txs: 1,
      epoch: p.epoch,
      before,
      after: p.captured.checksum,
      dbPages: p.captured.pages,
      added: [c],
      state: p.captured.clone(),
    });
  };

  /** Appends the head of the primary's queue (expected last sequence, as the real outbox sets it). */
  const publish = (n: SimNode): void => {
    const p = n.primary!;
    const head = p.queue[0];
    if (!head) return;
    if (lastSeq !== p.lastSeq) {
      log(
        `${n.id} publish refused: wrong last sequence (expected ${p.lastSeq}, stream at ${lastSeq}); deposed`,
      );
      n.primary = undefined;
      return;
    }
    const m: Msg = { ...head, seq: ++lastSeq };
    msgs.push(m);
    purged = false;
    p.queue.shift();
    p.lastSeq = lastSeq;
    stats.publishes++;
    if (m.kind === TxKind.Full) stats.fulls++;
    record(m);
    for (const c of m.added) {
      if (!acked.has(c)) stats.acked++;
      acked.add(c);
    }
    n.sidecar = { txid: m.txid, checksum: formatChecksum(m.after), leaderEpoch: p.epoch };
    log(`${n.id} published seq ${m.seq} ${m.kind} txid ${m.txid}`);
  };

  /** The primary stops gracefully: what it captured is published first (stop() syncs). */
  const stopPrimary = (n: SimNode): void => {
    while (n.primary?.queue.length) publish(n);
    if (n.primary) n.primary = undefined;
  };

  // --- replica ---

  /** Bootstraps from the newest snapshot, or from the stream's start when it was never trimmed. */
  const bootstrap = (n: SimNode, why: string): void => {
    stats.bootstraps++;
    const s = newestSnap();
    if (s) n.replica = { db: s.state.clone(), txid: s.txid, seq: s.seq, epoch: s.epoch };
    else n.replica = { db: new Db(), txid: 0, seq: 0, epoch: 0 };
    log(`${n.id} bootstraps (${why}) to txid ${n.replica.txid}`);
  };

  /** One consume step: the next message after the replica's sequence. True when something moved. */
  const replicate = (n: SimNode): boolean => {
    const r = n.replica;
    if (!r || n.stalled) return false;
    const next = msgs.find((m) => m.seq > r.seq);
    if (r.seq + 1 < firstSeq) {
      // Behind the trim point: what it needs is gone from the stream.
      return refuse(n, `behind the trim point (seq ${r.seq}, stream starts at ${firstSeq})`);
    }
    if (!next) return false;
    try {
      d.checkNext({ txid: r.txid, epoch: r.epoch, checksum: r.db.checksum }, next, next.seq);
    } catch (err) {
      return refuse(n, (err as Error).message.slice(0, 100));
    }
    if (next.kind === TxKind.Full) r.db = new Db(next.added);
    else for (const c of next.added) r.db.add(c);
    r.seq = next.seq;
    r.txid = next.txid;
    r.epoch = Math.max(r.epoch, next.epoch);
    n.refusedOnce = undefined;
    const want = history.get(r.txid);
    if (want !== undefined && want !== r.db.checksum) {
      fail(
        Invariant.ReplicaMatches,
        `${n.id} applied seq ${next.seq} (txid ${r.txid}) and holds ${formatChecksum(r.db.checksum)}; the history has ${formatChecksum(want)}`,
      );
    }
    return true;
  };

  /** A refusal: one bootstrap per cause, then the replica is stalled (visible, with the reason). */
  const refuse = (n: SimNode, why: string): boolean => {
    const cause = why.replace(/\d+/g, '#');
    if (n.refusedOnce === cause) {
      n.stalled = why;
      stats.stalls++;
      log(`${n.id} stalled: ${why}`);
      return false;
    }
    n.refusedOnce = cause;
    bootstrap(n, why);
    return true;
  };

  /**
   * Catches a replica up (promotion waits for this), then asks the real promotion gate whether it may be
   * promoted; false when it may not.
   */
  const catchUp = (n: SimNode): boolean => {
    for (let i = 0; i < 10_000 && n.replica && !n.stalled && replicate(n); i++);
    const r = n.replica;
    if (!r || n.stalled) return false;
    return d.promotionRefusal({ txid: r.txid, checksum: formatChecksum(r.db.checksum) }, tip()) === undefined;
  };

  /** A node starts as a replica: a database at its data path is adopted when the history has its state. */
  const startReplica = (n: SimNode): void => {
    n.up = true;
    n.stalled = undefined;
    n.refusedOnce = undefined;
    if (n.data) {
      const found = findState(n.data);
      const t = tip();
      if (found) {
        n.replica = { db: n.data, ...found };
        log(`${n.id} adopts its database at txid ${found.txid}`);
      } else if (t.source === 'none' || t.source === 'lost') {
        n.replica = { db: n.data, txid: n.sidecar?.txid ?? 0, seq: 0, epoch: n.sidecar?.leaderEpoch ?? 0 };
        log(`${n.id} keeps its database, unproven`);
      } else {
        log(`${n.id} sets its database aside (${n.data.commits.size} commits, not in the history)`);
      }
      n.data = undefined;
      n.sidecar = undefined;
    }
    if (!n.replica) bootstrap(n, 'no replica yet');
  };

  /** A message or snapshot whose state is exactly `db` (what `findState` looks for). */
  const findState = (db: Db): { txid: number; seq: number; epoch: number } | undefined => {
    for (const m of [...msgs].reverse())
      if (m.after === db.checksum && m.dbPages === db.pages)
        return { txid: m.txid, seq: m.seq, epoch: m.epoch };
    const s = [...snaps].reverse().find((x) => x.checksum === formatChecksum(db.checksum));
    return s ? { txid: s.txid, seq: s.seq, epoch: s.epoch } : undefined;
  };

  /** Elects a live node and promotes it: its replica catches up, then it starts as primary. */
  const elect = (exclude?: SimNode): void => {
    const candidates = nodes.filter((n) => n.up && n !== exclude && !n.primary);
    for (let tries = 0; tries < candidates.length; tries++) {
      const n = rng.pick(candidates.filter((c) => !c.stalled));
      if (!n) return;
      if (!catchUp(n)) {
        log(`${n.id} cannot promote: its replica is not at the tip`);
        continue;
      }
      const file = n.replica!.db;
      // As promote() does: the new primary counts on from at least the txid its replica reached.
      if (startPrimary(n, file, 'promoted', 'refuse', n.replica!.txid)) return;
    }
  };

  /**
   * An operator damaged the history (purged the stream: its tip is now an older snapshot, or nothing) and no
   * node can prove its copy: the operator runs `gc app recover --from <node>` with the best copy (the replica
   * furthest on). Not used otherwise: with an intact history the nodes must get through on their own.
   */
  const recoverIfLost = (): void => {
    const t = tip();
    if (!(t.source === 'lost' || (t.source === 'snapshot' && purged))) return;
    elect();
    if (leader()) return;
    const best = nodes
      .filter((n) => n.up && n.replica)
      .sort((a, b) => b.replica!.txid - a.replica!.txid || a.id.localeCompare(b.id))[0];
    if (!best) return;
    log(`operator recovers from ${best.id} (txid ${best.replica!.txid})`);
    startPrimary(best, best.replica!.db, 'gc app recover', 'publish', best.replica!.txid);
  };

  // --- the run ---

  const check = (): void => {
    const state = tipState();
    if (!state) return;
    for (const c of acked) {
      if (!state.commits.has(c)) {
        const t = tip();
        fail(
          Invariant.NoAckedLoss,
          `acknowledged commit ${c} is not in the history's tip (txid ${t.txid}, from the ${t.source}, ${state.commits.size} commits)`,
        );
        return;
      }
    }
  };

  startPrimary(nodes[0]!, new Db(), 'first start');
  log(`${nodeCount} nodes`);
  const quiet = Math.floor(steps * 0.8);
  for (step = 1; step <= steps && !violation; step++) {
    const faults = step <= quiet;
    const op = faults ? rng.weighted(weights) : rng.pick([Op.Publish, Op.Replicate, Op.Commit] as const);
    const l = leader();
    switch (op) {
      case Op.Commit:
        if (l) commit(l);
        break;
      case Op.Publish:
        if (l) publish(l);
        break;
      case Op.Replicate: {
        const n = rng.pick(nodes.filter((x) => x.up && x.replica));
        if (n) replicate(n);
        break;
      }
      case Op.Snapshot: {
        // The leader snapshots its acknowledged state, keeps two, and trims below the newest.
        if (!l) break;
        const t = tip();
        const state = tipState();
        if (t.source !== 'stream' || !state) break;
        snaps.push({
          txid: t.txid,
          seq: t.seq,
          epoch: t.epoch,
          checksum: formatChecksum(t.checksum),
          pageSizeBytes: PAGE,
          pageCount: t.dbPages,
          state,
        });
        if (snaps.length > 2) snaps.shift();
        // Stalled replicas retry when a newer snapshot appears.
        for (const n of nodes) {
          n.stalled = undefined;
          n.refusedOnce = undefined;
        }
        const below = d.trimPoint(streamTip(), t.seq + 1);
        if (below > 0) {
          msgs = msgs.filter((m) => m.seq >= below);
          firstSeq = below;
        }
        log(`snapshot at txid ${t.txid}, trimmed below ${below || '-'}`);
        break;
      }
      case Op.StepDown:
        if (l) {
          stopPrimary(l);
          startReplica(l);
          log(`${l.id} stepped down`);
          elect(l);
        }
        break;
      case Op.Crash:
        if (l) {
          // Its captured, unpublished commits stay in its file (never acknowledged).
          l.primary = undefined;
          l.up = false;
          log(`${l.id} crashed`);
          elect();
        }
        break;
      case Op.Restart: {
        const n = rng.pick(nodes.filter((x) => !x.up));
        if (n) {
          startReplica(n);
          log(`${n.id} restarted`);
          if (!leader()) elect();
        }
        break;
      }
      case Op.FullRestart: {
        const last = l;
        if (l) stopPrimary(l);
        for (const n of nodes) n.up = false;
        // Another process writes the last primary's file while no replicator runs.
        if (last?.data && rng.chance(0.5)) {
          for (let i = rng.int(1, 3); i > 0; i--) last.data.add(nextCommit++);
          log(`${last.id}'s file written by another process while gc was down`);
        }
        // A node may start directly as primary on the file at its data path (a library user calling
        // createPrimary at boot): the last primary, or one that crashed earlier and left its file there.
        const direct = rng.chance(0.5) ? rng.pick(nodes.filter((n) => n.data)) : undefined;
        for (const n of nodes) if (n !== direct) startReplica(n);
        log(`full restart${direct ? `, ${direct.id} starts as primary on its file` : ''}`);
        if (direct) {
          direct.up = true;
          if (!startPrimary(direct, direct.data ?? new Db(), 'direct start')) startReplica(direct);
        }
        if (!leader()) elect();
        break;
      }
      case Op.Purge: {
        // An operator purges the stream by hand (snapshots stay).
        msgs = [];
        firstSeq = lastSeq + 1;
        purged = true;
        // What was acknowledged after the newest snapshot is no longer in the history: the operator threw it
        // away, gc cannot be held to it (it may still come back through the primary's next transaction).
        const kept = newestSnap()?.state.commits;
        for (const c of acked) if (!kept?.has(c)) acked.delete(c);
        // Their txids are no longer in the history either: a new primary may use them again (replicas that
        // hold them refuse what follows, by txid or checksum, and bootstrap).
        for (const t of history.keys()) if (t > (newestSnap()?.txid ?? 0)) history.delete(t);
        log('stream purged by hand');
        break;
      }
    }
    if (!leader() && faults && rng.chance(0.3)) elect();
    if (!leader() && rng.chance(0.2)) recoverIfLost();
    check();
  }

  // Quiesce: every up node runs, the leader publishes what it holds, replicas catch up.
  if (!violation) {
    if (!leader()) elect();
    if (!leader()) recoverIfLost();
    const l = leader();
    if (l) while (l.primary?.queue.length) publish(l);
    check();
    for (const n of nodes) {
      if (!n.up || n.primary || violation) continue;
      catchUp(n);
      const t = tip();
      const r = n.replica;
      const atTip = r && r.txid === t.txid && r.db.checksum === t.checksum;
      if (!atTip && !n.stalled) {
        fail(
          Invariant.NoSilentStall,
          `${n.id} is at txid ${r?.txid ?? '-'} (tip ${t.txid}) and does not say it is stalled`,
        );
      }
    }
  }
  return { seed: o.seed, ...(violation ? { violation } : {}), trace, stats };
}

/** A failing seed as text: the violation, how to replay it, and the end of the trace. */
export function formatFailure(r: SimulationResult, mutant?: string): string {
  const v = r.violation!;
  return [
    `seed ${r.seed}: ${v.invariant} at step ${v.step}: ${v.detail}`,
    `replay: GC_SEED=${r.seed}${mutant ? ` GC_SIM_MUTANT=${mutant}` : ''} pnpm exec vitest run --project @gc/wal src/simulation.test.ts`,
    ...r.trace.slice(-25),
  ].join('\n');
}
