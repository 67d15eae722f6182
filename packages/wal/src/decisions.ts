import { formatChecksum, parseChecksum } from '@gc/sqlite';
import { DivergedError, GapError, NotAtTipError, type NotAtTipKind } from './errors.js';
import type { PositionFile } from './position.js';
import type { HistoryTip, SnapshotLike, StreamTip } from './stream.js';
import { TxKind, type TxKindValue } from './wire.js';

// The replication protocol's decisions, free of I/O: where the history ends, how far a trim may go, whether
// a primary may publish its database and from which txid it counts on, and whether a replica may apply the
// next transaction. The real code paths call these (stream.ts, primary/startup.ts, replica/apply.ts); the
// R16 replication simulation (simulation.ts) calls the same functions against a modeled stream, so what it
// explores is the decision code that runs in production.

/**
 * The tip of the replicated history: the stream's last complete transaction, unless the newest snapshot is
 * later (or the stream holds none); `none` for a history never written, `lost` for one written and then
 * trimmed or purged to nothing with no snapshot left.
 */
export function tipFrom(stream: StreamTip, snap: SnapshotLike | undefined): HistoryTip {
  if (stream.completeSeq > 0 && (!snap || snap.txid <= stream.txid)) {
    return {
      txid: stream.txid,
      epoch: stream.epoch,
      checksum: stream.after,
      dbPages: stream.dbPages,
      pageSizeBytes: stream.pageSizeBytes,
      seq: stream.completeSeq,
      source: 'stream',
      stream,
    };
  }
  if (snap) {
    return {
      txid: snap.txid,
      epoch: snap.epoch,
      checksum: parseChecksum(snap.checksum) ?? 0n,
      dbPages: snap.pageCount,
      pageSizeBytes: snap.pageSizeBytes,
      seq: snap.seq,
      source: 'snapshot',
      stream,
    };
  }
  return {
    txid: 0,
    epoch: 0,
    checksum: 0n,
    dbPages: 0,
    pageSizeBytes: 0,
    seq: 0,
    source: stream.seq > 0 ? 'lost' : 'none',
    stream,
  };
}

/**
 * How far a trim asked to go below `belowSeq` may purge: never the last complete transaction (an empty
 * stream would forget the tip's txid, epoch and checksum, and a new primary would start a new history).
 * Returns the sequence to purge below, or 0 when nothing may be purged.
 */
export function trimPoint(
  tip: Pick<StreamTip, 'completeFirstSeq' | 'seq' | 'firstSeq'>,
  belowSeq: number,
): number {
  const keepFrom = tip.completeFirstSeq > 0 ? tip.completeFirstSeq : tip.seq;
  const below = Math.min(belowSeq, keepFrom);
  return below <= tip.firstSeq ? 0 : below;
}

/** What {@link continuity} decides from. */
export interface ContinuityInput {
  /** The database path (named in errors). */
  path: string;
  tip: HistoryTip;
  /** Checksum and size in pages of the local database (file overlaid with its WAL). */
  local: bigint;
  localPages: number;
  /** This node's primary sidecar for the file, when it has one. */
  sidecar: Pick<PositionFile, 'txid' | 'leaderEpoch'> | undefined;
  /** `publish`: an operator decided to publish an unproven state (`gc app recover`). */
  unprovenState: 'refuse' | 'publish';
}

/**
 * Decides whether a new primary may publish its local database: it must be at the history's tip (same
 * checksum and size), or a fresh history, or provably the tip plus commits made here while no replicator ran
 * (this node's sidecar records that its primary published the tip's epoch from this file). Anything else
 * would overwrite committed history: refused with {@link NotAtTipError}, unless `unprovenState: 'publish'`.
 */
export function continuity(i: ContinuityInput): { publish: 'none' | 'full'; reason: string } {
  const { tip, local, sidecar, path } = i;
  const atTip =
    tip.source !== 'none' && tip.source !== 'lost' && local === tip.checksum && i.localPages === tip.dbPages;
  if (atTip) return { publish: 'none', reason: 'at the tip' };
  const localDesc = { txid: 0, checksum: formatChecksum(local) };
  const tipDesc = {
    txid: tip.txid,
    checksum: tip.source === 'none' || tip.source === 'lost' ? '' : formatChecksum(tip.checksum),
  };
  if (tip.source === 'none') {
    if (!sidecar || sidecar.txid === 0 || i.unprovenState === 'publish')
      return { publish: 'full', reason: 'a new history: publishing the whole database' };
    throw new NotAtTipError(
      'history-lost',
      path,
      tipDesc,
      { ...localDesc, txid: sidecar.txid },
      `this node published up to txid ${sidecar.txid}, but the WAL stream holds nothing and there is no snapshot`,
    );
  }
  if (i.unprovenState === 'publish') {
    return {
      publish: 'full',
      reason: `published deliberately (unprovenState: publish): local checksum ${formatChecksum(local)} is not the tip's ${tipDesc.checksum || '(history lost)'} at txid ${tip.txid}`,
    };
  }
  if (tip.source === 'lost')
    throw new NotAtTipError(
      'history-lost',
      path,
      tipDesc,
      localDesc,
      'the WAL stream was trimmed or purged to nothing and there is no snapshot',
    );
  // Every transaction of an epoch was captured from the file of the one node that held it: if that is this
  // node's last primary on this file, the tip is a state of this file and the file moved on from it
  // (commits made while no replicator ran, such as another process writing while gc restarted).
  if (sidecar && sidecar.leaderEpoch !== undefined && sidecar.leaderEpoch === tip.epoch && tip.epoch > 0) {
    return {
      publish: 'full',
      reason: `commits made here while no replicator ran: this node's primary (epoch ${tip.epoch}) published the tip (txid ${tip.txid}) from this file, which moved on from it (checksum ${formatChecksum(local)})`,
    };
  }
  throw new NotAtTipError(
    'diverged',
    path,
    tipDesc,
    { ...localDesc, txid: sidecar?.txid ?? 0 },
    `local state (${i.localPages} pages) differs from the tip (${tip.dbPages} pages, from the ${tip.source})`,
  );
}

/**
 * The txid a new primary counts on from (its first transaction is this + 1): never below the tip's, so a
 * primary never starts the history again at 1. A stream purged by hand loses the txids after the newest
 * snapshot: this node's own record of what it published in the same state (`sidecar`, when its checksum is
 * the local one) keeps them from being used twice. `minTxid` (an operator's recovery) applies to a full
 * publish.
 */
export function startTxid(i: {
  tip: HistoryTip;
  local: bigint;
  sidecar: Pick<PositionFile, 'txid' | 'checksum'> | undefined;
  publish: 'none' | 'full';
  minTxid: number;
}): number {
  const ownTxid =
    i.sidecar && i.sidecar.checksum === formatChecksum(i.local) && i.tip.source === 'snapshot'
      ? i.sidecar.txid
      : 0;
  return Math.max(i.tip.txid, ownTxid, i.publish === 'full' ? i.minTxid : 0);
}

/** A replica's state as {@link checkNext} compares it. */
export interface ReplicaState {
  txid: number;
  epoch: number;
  checksum: bigint;
}

/** The header fields of a transaction {@link checkNext} looks at. */
export interface NextTx {
  kind: TxKindValue;
  /** Last txid of the message and how many commits it holds (`txid - txs + 1` is its first). */
  txid: number;
  txs: number;
  epoch: number;
  before: bigint;
}

/**
 * Whether a replica at `state` may apply `m` next: a full message replaces the whole state and follows any
 * earlier txid (a replica behind a trim point, or after a deliberate recovery); anything else must continue
 * exactly where the replica is — the next txid, an epoch not below the replica's, and the checksum it starts
 * from. Throws {@link GapError} or {@link DivergedError} otherwise (`seq` names the message). The checksum
 * *after* the message is checked against its pages by the caller.
 */
export function checkNext(state: ReplicaState, m: NextTx, seq: number): void {
  if (m.kind === TxKind.Full ? m.txid <= state.txid : m.txid - m.txs + 1 !== state.txid + 1)
    throw new GapError(state.txid + 1, m.txid - m.txs + 1, seq);
  if (m.epoch < state.epoch) {
    throw new DivergedError(
      `txid ${m.txid} carries epoch ${m.epoch} below ${state.epoch}`,
      formatChecksum(state.checksum),
      formatChecksum(m.before),
      seq,
    );
  }
  if (m.kind !== TxKind.Full && m.before !== state.checksum) {
    throw new DivergedError(
      `txid ${m.txid} at stream seq ${seq}`,
      formatChecksum(state.checksum),
      formatChecksum(m.before),
      seq,
    );
  }
}

/**
 * Whether a caught-up replica may be promoted: with a history, it must hold exactly the tip (txid and
 * checksum); with none (`none`, `lost`), only an empty replica may (a copy claiming txids the history no
 * longer has needs an operator's `gc app recover`). Undefined when it may; otherwise why not.
 */
export function promotionRefusal(
  pos: { txid: number; checksum: string },
  tip: HistoryTip,
): { kind: NotAtTipKind; detail: string } | undefined {
  if (tip.source === 'none' || tip.source === 'lost') {
    return pos.txid > 0
      ? {
          kind: 'history-lost',
          detail: `this replica holds txid ${pos.txid}, but the WAL stream holds no transaction and there is no snapshot`,
        }
      : undefined;
  }
  if (pos.txid === tip.txid && pos.checksum === formatChecksum(tip.checksum)) return undefined;
  return pos.txid < tip.txid
    ? { kind: 'behind', detail: `it is at txid ${pos.txid}, the ${tip.source} at ${tip.txid}` }
    : {
        kind: 'diverged',
        detail: `at txid ${pos.txid} with checksum ${pos.checksum}, the ${tip.source} at ${tip.txid} with ${formatChecksum(tip.checksum)}`,
      };
}
