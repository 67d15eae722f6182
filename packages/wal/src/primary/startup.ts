import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { openSnapshotStore } from '@gc/snapshot';
import { formatChecksum } from '@gc/sqlite';
import { continuity, startTxid } from '../decisions.js';
import { NotLeaderError } from '../errors.js';
import { primarySidecarPath, readPosition } from '../position.js';
import { historyTip } from '../stream.js';
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
 * tip (the stream's last transaction, else the newest snapshot) and decides (decisions.ts) whether
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
  const sidecar = readPosition(primarySidecarPath(ctx.o.path), ctx.names.platform, ctx.names.app);
  const decision = continuity({
    path: ctx.o.path,
    tip,
    local,
    localPages: ctx.hashes.pageCount,
    sidecar,
    unprovenState: ctx.o.unprovenState,
  });
  // Txids count on from the tip (or from `minTxid`): a new primary never starts the history again at 1.
  ctx.capturedTxid = startTxid({ tip, local, sidecar, publish: decision.publish, minTxid: ctx.o.minTxid });
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
