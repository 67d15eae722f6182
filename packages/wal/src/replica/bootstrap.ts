import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createFence } from '@gc/core';
import { SnapshotCorruptError } from '@gc/snapshot';
import { PageHashes, hashFile } from '@gc/sqlite';
import { UnreplicatedWritesError } from '../errors.js';
import { emptyPosition, fsyncDir, writePosition } from '../position.js';
import { ReplicaStateName } from '../types.js';
import type { Applier } from './apply.js';
import type { ReplicaContext } from './context.js';
import type { Stalls } from './stalls.js';

/** The parts of a replica that bootstrapping (and the start-up and the consume loop around it) use. */
export interface ReplicaParts {
  ctx: ReplicaContext;
  applier: Applier;
  stalls: Stalls;
}

/**
 * Replaces the replica with the newest snapshot that verifies, or with an empty database when there is
 * none or none verifies (the stream is then replayed from its start: it works when the stream still
 * begins with txid 1 or a `full` message; otherwise the first message is a gap and the replica stalls).
 */
export async function bootstrap(parts: ReplicaParts, reason: string, keepAside = false): Promise<void> {
  const { ctx, applier, stalls } = parts;
  ctx.setState(ReplicaStateName.Bootstrapping, reason);
  // What was applied to the old file is made durable first (a copy kept aside may hold commits nobody else
  // has), and no delayed flush is left to run on it.
  await applier.flush();
  applier.fileEpoch++;
  // A flush in flight may still record the old file's position or fsync its descriptors: let it end
  // (it skips the rest once it sees the new epoch), then close them.
  await applier.flushing;
  applier.closeFiles();
  if (existsSync(ctx.replicaPath)) {
    const aside = `${ctx.replicaPath}.${keepAside ? 'superseded' : 'refused'}-${ctx.o.clock.wallNow()}`;
    renameSync(ctx.replicaPath, aside);
    if (!keepAside) rmSync(aside, { force: true });
    else {
      // The stream now holds a history that does not contain this copy (it went back below its txid, as
      // after an operator published another node's copy): the copy may hold commits nobody else has.
      // Kept for inspection, never merged.
      const error = new UnreplicatedWritesError(ctx.replicaPath, aside, ctx.pos.checksum, ctx.pos.txid);
      ctx.o.logger.warn('replica copy superseded by another history; kept aside', { err: error.message });
      ctx.emit({ type: 'unreplicated-writes', error });
    }
  }
  ctx.removeReplicaFiles();
  ctx.fence = createFence();
  // The snapshot's sequences may refer to an older stream: checked (and rebased) when consuming starts.
  ctx.streamCreated = undefined;
  ctx.bootstraps++;
  const latest = ctx.o.snapshots ? await ctx.o.snapshots.latest() : undefined;
  let fallback: string | undefined;
  if (ctx.o.snapshots && latest) {
    try {
      const info = await ctx.o.snapshots.restore(ctx.replicaPath);
      ctx.pos = {
        txid: info.txid,
        seq: info.seq,
        epoch: info.epoch,
        checksum: info.checksum,
        pageSizeBytes: info.pageSizeBytes,
        dbPages: info.pageCount,
      };
      ctx.hashes = hashFile(ctx.replicaPath, {
        pageSizeBytes: info.pageSizeBytes,
        pageCount: info.pageCount,
      });
      if (ctx.pos.epoch > 0) ctx.fence.check(ctx.pos.epoch, 'snapshot');
      ctx.emit({ type: 'bootstrap', from: 'snapshot', txid: info.txid, reason });
      writePosition(ctx.posPath, ctx.sidecar());
      fsyncDir(dirname(ctx.replicaPath));
      stalls.progress(); // a snapshot past the refused message ends a stall
      return;
    } catch (err) {
      if (!(err instanceof SnapshotCorruptError)) throw err;
      // Every snapshot failed verification: the stream may still hold the whole history.
      fallback = `every snapshot failed verification (${err.message}): replaying the stream from its start`;
      ctx.o.logger.error('replica bootstrap: no snapshot verified', { err: err.message });
      ctx.emit({ type: 'error', error: err });
    }
  }
  writeFileSync(ctx.replicaPath, Buffer.alloc(0));
  ctx.pos = emptyPosition();
  ctx.hashes = new PageHashes();
  ctx.emit({
    type: 'bootstrap',
    from: 'empty',
    txid: 0,
    reason: fallback ? `${reason}; ${fallback}` : reason,
  });
  writePosition(ctx.posPath, ctx.sidecar());
  fsyncDir(dirname(ctx.replicaPath));
  ctx.progressAt = ctx.o.clock.now();
}
