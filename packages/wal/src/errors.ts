import { GcError } from '@gc/core';

/** Stable error codes of `@gc/wal`. */
export const WalErrorCode = {
  /** A WAL stream message failed its chunk CRC, length or page checksum. Nothing was applied. */
  CorruptMessage: 'GC_WAL_CORRUPT_MESSAGE',
  /** The next transaction in the stream is not the one after the replica's position. */
  Gap: 'GC_WAL_GAP',
  /** The replica's database state is not the state the stream's next transaction starts from. */
  Diverged: 'GC_WAL_DIVERGED',
  /** A deposed leader has local writes that never reached the stream. They were set aside, not merged. */
  UnreplicatedWrites: 'GC_WAL_UNREPLICATED_WRITES',
  /** The replica directory belongs to another platform/app. */
  WrongOwner: 'GC_WAL_WRONG_OWNER',
  /** The stream's last sequence moved under this primary: another leader is appending. */
  NotLeader: 'GC_WAL_NOT_LEADER',
  /** Promotion could not verify the replica (checksum or integrity_check). */
  PromotionFailed: 'GC_WAL_PROMOTION_FAILED',
  /** The local WAL could not be followed continuously; a full resync was published. */
  ContinuityLost: 'GC_WAL_CONTINUITY_LOST',
  /**
   * A database that is not proven to be at the replicated history's tip was about to be published as the
   * truth (it is behind, diverged, or the history is gone). Refused: nothing was published.
   */
  NotAtTip: 'GC_WAL_NOT_AT_TIP',
  /** A replica cannot follow the stream (the same refusal after a bootstrap, or no snapshot covers its gap). */
  ReplicaStalled: 'GC_WAL_REPLICA_STALLED',
} as const;
/** One of {@link WalErrorCode}. */
export type WalErrorCodeValue = (typeof WalErrorCode)[keyof typeof WalErrorCode];

/** A stream message (or a group of chunks) is corrupt: CRC, length or checksum mismatch. */
export class CorruptMessageError extends GcError {
  /** Stream sequence of the offending message. */
  readonly seq: number;
  constructor(seq: number, reason: string, options?: ErrorOptions) {
    super(
      WalErrorCode.CorruptMessage,
      `WAL message at stream seq ${seq} is corrupt: ${reason}; nothing was applied`,
      options,
    );
    this.name = 'CorruptMessageError';
    this.seq = seq;
  }
}

/** The stream skips transactions the replica needs. */
export class GapError extends GcError {
  readonly expectedTxid: number;
  /** NaN when no transaction was read (see `detail`). */
  readonly gotTxid: number;
  /** Stream sequence of the message (or of the stream's end) where the gap was found. */
  readonly seq: number;
  constructor(expectedTxid: number, gotTxid: number, seq: number, detail?: string) {
    super(
      WalErrorCode.Gap,
      `WAL gap at stream seq ${seq}: ${detail ?? `expected txid ${expectedTxid}, got ${gotTxid}`}; the replica re-bootstraps from a snapshot`,
    );
    this.name = 'GapError';
    this.expectedTxid = expectedTxid;
    this.gotTxid = gotTxid;
    this.seq = seq;
  }
}

/** Local state and stream history disagree. */
export class DivergedError extends GcError {
  readonly localChecksum: string;
  readonly streamChecksum: string;
  /** Stream sequence of the transaction that did not fit, when one did. */
  readonly seq: number | undefined;
  constructor(what: string, localChecksum: string, streamChecksum: string, seq?: number) {
    super(
      WalErrorCode.Diverged,
      `${what}: local checksum ${localChecksum} != stream checksum ${streamChecksum}; the local copy is not used`,
    );
    this.name = 'DivergedError';
    this.localChecksum = localChecksum;
    this.streamChecksum = streamChecksum;
    this.seq = seq;
  }
}

/** A deposed leader's writes that never reached the stream. */
export class UnreplicatedWritesError extends GcError {
  /** Where the local copy with the unreplicated writes was moved (kept for audit, never merged). */
  readonly savedPath: string;
  /** Local checksum of the deposed copy. */
  readonly localChecksum: string;
  /** The last txid this node knows reached the stream. */
  readonly lastReplicatedTxid: number;
  constructor(path: string, savedPath: string, localChecksum: string, lastReplicatedTxid: number) {
    super(
      WalErrorCode.UnreplicatedWrites,
      `${path} has writes after txid ${lastReplicatedTxid} that never reached the WAL stream (local checksum ${localChecksum} is in no replicated state); the file was moved to ${savedPath} for inspection and NOT merged; the node continues as a replica of the stream`,
    );
    this.name = 'UnreplicatedWritesError';
    this.savedPath = savedPath;
    this.localChecksum = localChecksum;
    this.lastReplicatedTxid = lastReplicatedTxid;
  }
}

/** The replica's files are owned by another platform/app. */
export class WrongOwnerError extends GcError {
  constructor(path: string, owner: string, wanted: string) {
    super(
      WalErrorCode.WrongOwner,
      `${path} belongs to ${owner}, not ${wanted}: use a separate directory per app (nothing was changed)`,
    );
    this.name = 'WrongOwnerError';
  }
}

/** Another leader extended the stream; this primary stopped publishing. */
export class NotLeaderError extends GcError {
  readonly epoch: number;
  constructor(epoch: number, detail: string, options?: ErrorOptions) {
    super(
      WalErrorCode.NotLeader,
      `WAL publish with epoch ${epoch} refused: ${detail}; this node is no longer the leader and must demote`,
      options,
    );
    this.name = 'NotLeaderError';
    this.epoch = epoch;
  }
}

/** Promotion stopped before the replica was made writable. */
export class PromotionError extends GcError {
  constructor(reason: string, options?: ErrorOptions) {
    super(WalErrorCode.PromotionFailed, `promotion failed: ${reason}; the node stays a replica`, options);
    this.name = 'PromotionError';
  }
}

/** Why a database is not the history's tip (see {@link NotAtTipError}). */
export type NotAtTipKind =
  /** The stream (or a snapshot) holds transactions after the local state, or another state altogether. */
  | 'diverged'
  /** The local copy claims a history (txid > 0) but the stream and every snapshot are gone. */
  | 'history-lost'
  /** The replica did not reach the tip (still bootstrapping, refusing or catching up). */
  | 'behind';

/**
 * Publishing this database would overwrite committed history. Nothing was published. A node whose copy is
 * behind or diverged bootstraps from a snapshot and the stream instead; when no node can prove it is current
 * (the stream and every snapshot were deleted), an operator publishes a chosen copy deliberately
 * (`gc app recover`, `unprovenState: 'publish'`).
 */
export class NotAtTipError extends GcError {
  readonly kind: NotAtTipKind;
  /** Txid and checksum of the tip as known (0 / empty when the history is gone). */
  readonly tipTxid: number;
  readonly tipChecksum: string;
  /** The local state. */
  readonly localTxid: number;
  readonly localChecksum: string;
  constructor(
    kind: NotAtTipKind,
    path: string,
    tip: { txid: number; checksum: string },
    local: { txid: number; checksum: string },
    detail: string,
    options?: ErrorOptions,
  ) {
    super(
      WalErrorCode.NotAtTip,
      `${path} is not proven to be at the replicated history's tip (${detail}; tip txid ${tip.txid} checksum ${tip.checksum || '-'}, local ${local.txid ? `txid ${local.txid} ` : ''}checksum ${local.checksum}): it was not published, so no committed transaction is overwritten. ${
        kind === 'history-lost'
          ? 'The WAL stream and every snapshot are gone: publish the best copy deliberately with `gc app recover <app> --from <node>` (or unprovenState: "publish")'
          : 'A node whose copy is behind catches up from a snapshot and the stream; another node may lead meanwhile'
      }`,
      options,
    );
    this.name = 'NotAtTipError';
    this.kind = kind;
    this.tipTxid = tip.txid;
    this.tipChecksum = tip.checksum;
    this.localTxid = local.txid;
    this.localChecksum = local.checksum;
  }
}

/** A replica cannot follow the stream; it retries with backoff and says why. */
export class ReplicaStalledError extends GcError {
  constructor(reason: string, options?: ErrorOptions) {
    super(WalErrorCode.ReplicaStalled, `replica stalled: ${reason}`, options);
    this.name = 'ReplicaStalledError';
  }
}
