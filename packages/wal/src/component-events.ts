// How `ReplicatedDatabase` (component.ts) reports what its replica, primary and snapshotter do: audit
// records, metrics, and a step-down when another leader extended the stream.
import type { ComponentContext, Epoch } from '@gc/core';
import type { SnapshotterEvent } from '@gc/snapshot';
import type { WalMetrics } from './component-metrics.js';
import type { PrimaryEvent, ReplicaEvent } from './types.js';

/** Audits (and counts) an event of the replica. */
export function reportReplicaEvent(
  e: ReplicaEvent,
  d: ComponentContext,
  metrics: WalMetrics | undefined,
): void {
  const app = d.app;
  if (e.type === 'bootstrap') {
    metrics?.bootstraps.inc({ app, from: e.from });
    d.audit('wal.bootstrap', {
      from: e.from,
      txid: e.txid,
      ...(e.reason ? { reason: e.reason } : {}),
    });
  } else if (e.type === 'unreplicated-writes') {
    metrics?.unreplicated.inc({ app });
    d.audit('wal.unreplicated_writes', {
      error: e.error.message,
      path: e.error.savedPath,
      afterTxid: e.error.lastReplicatedTxid,
      checksum: e.error.localChecksum,
    });
  } else if (e.type === 'refused') {
    metrics?.refusals.inc({ app });
    d.audit('wal.replica_refused', { error: e.error.message });
  } else if (e.type === 'stalled') {
    metrics?.stalls.inc({ app });
    d.audit('wal.replica_stalled', { reason: e.reason, retryInMs: e.retryInMs });
  } else if (e.type === 'recovered') d.audit('wal.replica_recovered', { txid: e.txid });
  else if (e.type === 'error') d.audit('wal.replica_error', { error: e.error.message });
}

/** Audits (and counts) an event of the primary publishing with `epoch`; steps down when it is not the leader. */
export function reportPrimaryEvent(
  e: PrimaryEvent,
  epoch: Epoch,
  d: ComponentContext,
  metrics: WalMetrics | undefined,
): void {
  if (e.type === 'not-leader') {
    // Another epoch extended the stream: we are no longer the leader.
    d.audit('wal.not_leader', { epoch, error: e.error.message });
    d.stepDown(`another leader extended the WAL stream: ${e.error.message}`);
  } else if (e.type === 'resync') {
    metrics?.resyncs.inc({ app: d.app });
    d.audit('wal.resync', { txid: e.txid, reason: e.reason });
  } else if (e.type === 'error') d.audit('wal.primary_error', { error: e.error.message });
}

/** Audits an event of the primary's snapshotter. */
export function reportSnapshotEvent(e: SnapshotterEvent, d: ComponentContext): void {
  if (e.type === 'snapshot')
    d.audit('snapshot.created', {
      snapshot: e.info.name,
      txid: e.info.txid,
      bytes: e.info.sizeBytes,
      ms: Math.round(e.durationMs),
    });
  else if (e.type === 'pruned')
    d.audit('snapshot.pruned', {
      deleted: e.deleted.map((x) => x.name),
      ...(e.trimmedBelowSeq ? { trimmedBelowSeq: e.trimmedBelowSeq } : {}),
    });
  else d.audit('snapshot.failed', { error: e.error.message });
}
