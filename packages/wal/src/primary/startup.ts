import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { openSnapshotStore } from '@gc/snapshot';
import { formatChecksum } from '@gc/sqlite';
import { NotAtTipError, NotLeaderError } from '../errors.js';
import { primarySidecarPath, readPosition } from '../position.js';
import { historyTip, type HistoryTip } from '../stream.js';
import { TxKind } from '../wire.js';
import type { Capture } from './capture.js';
import type { PrimaryContext } from './context.js';
import type { Outbox } from './outbox.js';
import type { FileVerifier } from './verify.js';

/** The parts of a primary that start-up sets. */
export interface StartupParts {
  ctx: PrimaryContext;
  capture: Capture;
  outbox: Outbox;
  verifier: FileVerifier;
}

/**
 * Start-up, before the first capture round: reads the full local state under a pin, finds the history's
 * tip (the stream's last transaction, else the newest snapshot) and decides with {@link continuity} whether
 * the local database may be published; txids and the acknowledged position then count on from the tip, and
 * what the stream needs is queued (the whole database, or the new epoch's marker). The engine publishes it.
 */
export async function resumeFromTip(
  parts: StartupParts,
  nc: NatsConnection,
  jsm: JetStreamManager,
): Promise<void> {
  const { ctx, capture, outbox, verifier } = parts;
  capture.openPin();
  capture.releasePrevPin();
  const state = capture.readState();
  ctx.hashes = state.hashes;
  ctx.pageSize = state.pageSize;
  capture.cursor = state.cursor;
  capture.framesInGeneration = state.txs.reduce((n, t) => n + t.frames, 0);
  capture.changeCounter = state.hashes.pageCount ? state.page(1).readUInt32BE(24) : 0;
  verifier.verifiedAt = ctx.o.clock.now();
  const snapshots = ctx.o.snapshotTip
    ? await openSnapshotStore(nc, { platform: ctx.names.platform, app: ctx.names.app })
    : undefined;
  const tip = await historyTip(jsm, ctx.names, snapshots);
  const stream = tip.stream;
  outbox.lastSeq = stream.seq;
  const highest = Math.max(stream.epoch, stream.lastEpoch, tip.epoch);
  if (highest > ctx.o.epoch) {
    throw new NotLeaderError(ctx.o.epoch, `the stream already holds epoch ${highest}`);
  }
  const local = ctx.hashes.checksum;
  const atTip =
    tip.source !== 'none' &&
    tip.source !== 'lost' &&
    local === tip.checksum &&
    ctx.hashes.pageCount === tip.dbPages;
  const decision = continuity(ctx, tip, local, atTip);
  // Txids count on from the tip (or from `minTxid`): a new primary never starts the history again at 1. A
  // stream purged by hand loses the txids after the newest snapshot: this node's own record of what it
  // published in the same state keeps them from being used twice.
  const own = readPosition(primarySidecarPath(ctx.o.path), ctx.names.platform, ctx.names.app);
  const ownTxid = own && own.checksum === formatChecksum(local) && tip.source === 'snapshot' ? own.txid : 0;
  const base = Math.max(tip.txid, ownTxid, decision.publish === 'full' ? ctx.o.minTxid : 0);
  ctx.capturedTxid = base;
  outbox.acked = {
    txid: tip.txid,
    seq: tip.source === 'stream' ? tip.seq : 0,
    epoch: tip.epoch,
    checksum: formatChecksum(tip.checksum),
    pageSizeBytes: ctx.pageSize,
    dbPages: ctx.hashes.pageCount,
  };
  outbox.history.push({
    txid: tip.txid,
    epoch: tip.epoch,
    after: tip.checksum,
    dbPages: tip.dbPages,
    seq: tip.source === 'stream' ? tip.seq : 0,
  });
  if (decision.publish === 'full') capture.queueFull(state.page, decision.reason, tip.checksum);
  else if (tip.epoch < ctx.o.epoch || tip.source === 'snapshot') {
    // The new epoch's marker fences the previous leader; on a stream that holds no transaction it also
    // puts the tip (txid, checksum) back into the stream.
    outbox.queueTx(TxKind.Epoch, [], local, local);
  }
}

/**
 * Decides whether the local database may be published: it must be at the history's tip (same checksum
 * and size), or a fresh history, or provably the tip plus commits made here while no replicator ran (this
 * node's sidecar records that it published exactly the tip). Anything else would overwrite committed
 * history: refused with {@link NotAtTipError}, unless `unprovenState: 'publish'` (an operator's decision).
 */
export function continuity(
  ctx: PrimaryContext,
  tip: HistoryTip,
  local: bigint,
  atTip: boolean,
): { publish: 'none' | 'full'; reason: string } {
  const path = ctx.o.path;
  const localDesc = { txid: 0, checksum: formatChecksum(local) };
  const tipDesc = {
    txid: tip.txid,
    checksum: tip.source === 'none' || tip.source === 'lost' ? '' : formatChecksum(tip.checksum),
  };
  if (atTip) return { publish: 'none', reason: 'at the tip' };
  const sidecar = readPosition(primarySidecarPath(path), ctx.names.platform, ctx.names.app);
  if (tip.source === 'none') {
    if (!sidecar || sidecar.txid === 0 || ctx.o.unprovenState === 'publish')
      return { publish: 'full', reason: 'a new history: publishing the whole database' };
    throw new NotAtTipError(
      'history-lost',
      path,
      tipDesc,
      { ...localDesc, txid: sidecar.txid },
      `this node published up to txid ${sidecar.txid}, but the WAL stream holds nothing and there is no snapshot`,
    );
  }
  if (ctx.o.unprovenState === 'publish') {
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
    `local state (${ctx.hashes.pageCount} pages) differs from the tip (${tip.dbPages} pages, from the ${tip.source})`,
  );
}
