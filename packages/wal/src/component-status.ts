// The replication status of `ReplicatedDatabase` (component.ts): its shape, how it is derived from the
// primary's or the replica's position, and what counts as healthy.
import type { WalPosition } from './position.js';
import { ReplicaStateName, type PrimaryPosition, type ReplicaLag, type ReplicaState } from './types.js';

/** Replication of one app's database on this node, as the app's status shows it. */
export interface ReplicationStatus {
  role: 'primary' | 'replica' | 'none';
  /** Last txid applied (replica) or acknowledged by the stream (primary). */
  txid: number;
  /** Database checksum at `txid` (16 hex digits): equal on every node that holds the same state. */
  checksum?: string;
  /** Transactions the replica has not applied yet, against the history's tip (0 on the primary). */
  lagTx: number;
  /** How long the replica has been behind, in ms (primary: how long commits stay unacknowledged). */
  lagMs: number;
  /**
   * `following`, `bootstrapping`, `stalled` (cannot follow: see `reason`), `primary` (publishing),
   * `publish-failing` (commits not acknowledged), `refused` (this node's copy was not allowed to become
   * the primary: see `reason`), `starting`, `stopped`.
   */
  state: string;
  /** Why the state is not a healthy one; undefined when healthy. */
  reason?: string;
  /** The history's tip as last seen (replica). */
  tipTxid?: number;
  /** Bootstraps and refused transactions since the replica started. */
  bootstraps?: number;
  refusals?: number;
}

/** Why the last promotion on a node was refused. */
interface Refusal {
  reason: string;
  kind: string;
}

/** A primary whose commits stay unacknowledged this long is `publish-failing`. */
const PUBLISH_FAILING_MS = 10_000;
/** A replica behind the tip for this long counts as broken in health. */
const LAGGING_MS = 60_000;

/** Status of a primary with `unacked` captured transactions, the oldest of them unacknowledged for `lagMs`. */
export function primaryStatus(p: PrimaryPosition, unacked: number, lagMs: number): ReplicationStatus {
  return {
    role: 'primary',
    txid: p.txid,
    checksum: p.checksum,
    lagTx: 0,
    lagMs: Math.round(lagMs),
    state: lagMs >= PUBLISH_FAILING_MS ? 'publish-failing' : 'primary',
    ...(lagMs >= PUBLISH_FAILING_MS
      ? {
          reason: `${unacked} captured transactions not acknowledged by the WAL stream for ${Math.round(lagMs / 1000)} s`,
        }
      : {}),
  };
}

/**
 * Status of a replica at `pos` in `state`; when its lag could not be read (`lag` is the error), the lag and
 * tip of the `previous` status stand.
 */
export function replicaStatus(
  pos: WalPosition,
  state: ReplicaState,
  lag: ReplicaLag | { error: Error },
  previous: ReplicationStatus,
  refused: Refusal | undefined,
): ReplicationStatus {
  const lagTx = 'error' in lag ? previous.lagTx : lag.transactions;
  const lagMs = 'error' in lag ? previous.lagMs : Math.round(lag.seconds * 1000);
  const st: ReplicationStatus = {
    role: 'replica',
    txid: pos.txid,
    checksum: pos.checksum,
    lagTx,
    lagMs,
    state: refused ? 'refused' : state.state,
    tipTxid: 'error' in lag ? previous.tipTxid : lag.streamTxid,
    bootstraps: state.bootstraps,
    refusals: state.refusals,
  };
  if (refused) st.reason = `promotion refused (${refused.kind}): ${refused.reason}`;
  else if (state.state === ReplicaStateName.Stalled) st.reason = state.reason;
  else if (state.state === ReplicaStateName.Bootstrapping) st.reason = state.reason;
  else if ('error' in lag) st.reason = `cannot read the stream's tip: ${lag.error.message}`;
  else if (lagMs >= LAGGING_MS) st.reason = `${lagTx} transactions behind for ${Math.round(lagMs / 1000)} s`;
  return st;
}

/** Status of a node with neither a primary nor a replica (`replicaError`: why no replica runs). */
export function idleStatus(
  stopping: boolean,
  refused: Refusal | undefined,
  replicaError: { at: number; error: string } | undefined,
): ReplicationStatus {
  const st: ReplicationStatus = {
    role: 'none',
    txid: 0,
    lagTx: 0,
    lagMs: 0,
    state: stopping ? 'stopped' : 'starting',
  };
  if (refused) {
    st.state = 'refused';
    st.reason = refused.reason;
  } else if (replicaError && !stopping) {
    st.state = 'stalled';
    st.reason = `no replica runs on this node since ${new Date(replicaError.at).toISOString()}: ${replicaError.error} (retrying)`;
  }
  return st;
}

/** Health of replication as `s` shows it: true, or the reason it is broken. */
export function replicationHealth(s: ReplicationStatus): true | string {
  if (s.state === 'stalled' || s.state === 'refused' || s.state === 'publish-failing')
    return `${s.state}: ${s.reason ?? 'unknown'}`;
  if (s.role === 'replica' && s.reason) return `${s.state}: ${s.reason}`;
  return true;
}
