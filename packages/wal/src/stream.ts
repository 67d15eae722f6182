import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { isStreamNotFound, jsApiCode, JsApiCode, resourceNames } from '@gc/core';
import type { SnapshotPosition } from '@gc/snapshot';
import { parseChecksum } from '@gc/sqlite';
import { tipFrom, trimPoint } from './decisions.js';
import { WalHeader, type TxKindValue } from './wire.js';

/** Names of one app's replication resources. */
export interface WalNames {
  platform: string;
  app: string;
  /** Stream `{platform}_{app}_wal`. */
  stream: string;
  /** Subject `{platform}_{app}_wal.tx` (the stream's only subject). */
  subject: string;
}

/** Resolves (and validates) the stream and subject names for an app. */
export function walNames(platform: string, app: string): WalNames {
  const n = resourceNames(platform).app(app);
  return { platform: n.platform, app: n.app, stream: n.walStream, subject: `${n.walStream}.tx` };
}

/** Creates the WAL stream if it does not exist (file storage, no limits, 2 min duplicate window). */
export async function ensureWalStream(
  nc: NatsConnection,
  names: WalNames,
  replicas = 1,
): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(names.stream);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
    try {
      await jsm.streams.add({
        name: names.stream,
        subjects: [names.subject],
        storage: 'file',
        num_replicas: replicas,
        duplicate_window: 120_000_000_000,
        description: `gc WAL of ${names.platform}/${names.app}`,
      });
    } catch (e) {
      // Another node created it meanwhile.
      if (jsApiCode(e) !== JsApiCode.StreamNameInUse) throw e;
    }
  }
  return jsm;
}

/** The last message of the WAL stream, parsed. */
export interface StreamTip {
  /** Stream sequence of the last message (0 when the stream is empty). */
  seq: number;
  txid: number;
  epoch: number;
  kind: TxKindValue | undefined;
  /** Database checksum after the last transaction. */
  after: bigint;
  /** Chunk `i/n` of the last message. */
  chunk: string;
  /** `Nats-Msg-Id` of the last message. */
  msgId: string;
  /** Server timestamp of the last message, ms since the Unix epoch. */
  timeMs: number;
  /** First sequence still in the stream. */
  firstSeq: number;
  /** Sequence of the last message of the last complete transaction (`txid`); ≤ `seq`. */
  completeSeq: number;
  /** Epoch of the very last message (fencing looks at this one, complete or not). */
  lastEpoch: number;
  /** Stream sequence of the first chunk of the last complete transaction (0 when none). */
  completeFirstSeq: number;
  /** Database size in pages and page size after the last complete transaction (0 when none). */
  dbPages: number;
  pageSizeBytes: number;
  /** When the stream was created (ISO time from the server): a stream deleted and made anew has another. */
  created: string;
}

/** Reads the stream state and its last message. */
export async function streamTip(jsm: JetStreamManager, names: WalNames): Promise<StreamTip> {
  const info = await jsm.streams.info(names.stream);
  const empty: StreamTip = {
    seq: 0,
    txid: 0,
    epoch: 0,
    kind: undefined,
    after: 0n,
    chunk: '',
    msgId: '',
    timeMs: 0,
    firstSeq: info.state.first_seq,
    completeSeq: 0,
    lastEpoch: 0,
    completeFirstSeq: 0,
    dbPages: 0,
    pageSizeBytes: 0,
    created: info.created,
  };
  if (info.state.last_seq === 0 || info.state.messages === 0) return { ...empty, seq: info.state.last_seq };
  const last = await jsm.streams.getMessage(names.stream, { seq: info.state.last_seq });
  if (!last) return { ...empty, seq: info.state.last_seq };
  const lastEpoch = Number(last.header.get(WalHeader.Epoch));
  // A leader that died mid-transaction leaves chunks without their last one: skip back to the last
  // complete transaction (the incomplete one was never acknowledged, replicas drop it).
  let m = last;
  for (;;) {
    const c = /^(\d+)\/(\d+)$/.exec(m.header.get(WalHeader.Chunk));
    if (c && Number(c[1]) === Number(c[2]) - 1) break;
    const prev =
      m.seq > info.state.first_seq ? await jsm.streams.getMessage(names.stream, { seq: m.seq - 1 }) : null;
    if (!prev) return { ...empty, seq: info.state.last_seq, lastEpoch };
    m = prev;
  }
  const chunk = /^(\d+)\/(\d+)$/.exec(m.header.get(WalHeader.Chunk));
  return {
    ...empty,
    completeSeq: m.seq,
    completeFirstSeq: m.seq - Number(chunk?.[1] ?? 0),
    dbPages: Number(m.header.get(WalHeader.DbPages)) || 0,
    pageSizeBytes: Number(m.header.get(WalHeader.PageSize)) || 0,
    lastEpoch,
    seq: info.state.last_seq,
    txid: Number(m.header.get(WalHeader.Txid)),
    epoch: Number(m.header.get(WalHeader.Epoch)),
    kind: m.header.get(WalHeader.Kind) as TxKindValue,
    after: parseChecksum(m.header.get(WalHeader.After)) ?? 0n,
    chunk: m.header.get(WalHeader.Chunk),
    msgId: m.header.get('Nats-Msg-Id'),
    timeMs: m.time.getTime(),
    firstSeq: info.state.first_seq,
  };
}

/** Where the replicated history ends, from the stream's last complete transaction or the newest snapshot. */
export interface HistoryTip {
  /** Last txid of the history (0 when there is none). */
  txid: number;
  /** Epoch of that txid. */
  epoch: number;
  /** Database checksum after it. */
  checksum: bigint;
  /** Database size in pages after it. */
  dbPages: number;
  /** Page size (0 when unknown). */
  pageSizeBytes: number;
  /** Stream sequence of the last message of `txid` (a snapshot's `seq`); replay continues after it. */
  seq: number;
  /**
   * `stream`: the stream's last complete transaction; `snapshot`: the stream holds none (trimmed or made
   * anew) and the newest snapshot gives the tip; `none`: a new history (empty stream never written, no
   * snapshot); `lost`: the stream was written and trimmed or purged to nothing, and no snapshot is left.
   */
  source: 'stream' | 'snapshot' | 'none' | 'lost';
  /** The stream's own state. */
  stream: StreamTip;
}

/**
 * The tip of an app's replicated history. Trimming keeps the last complete transaction in the stream
 * ({@link trimWalStream}), so the tip normally comes from there; when the stream holds none (deleted and
 * made anew, or purged by hand), the newest snapshot tells it.
 */
export async function historyTip(
  jsm: JetStreamManager,
  names: WalNames,
  snapshots: { latest(): Promise<SnapshotLike | undefined> } | undefined,
): Promise<HistoryTip> {
  const stream = await streamTip(jsm, names);
  return tipFrom(stream, await snapshots?.latest());
}

/** The fields of a stored snapshot that {@link historyTip} reads: its position (`SnapshotInfo` has them). */
export type SnapshotLike = SnapshotPosition;

/**
 * Purges the WAL stream below `belowSeq`, but never the last complete transaction: an empty stream would
 * forget the history's tip (txid, epoch, checksum), and a new primary would then start a new history.
 * Returns the sequence actually purged below (0 when nothing was).
 */
export async function trimWalStream(
  jsm: JetStreamManager,
  names: WalNames,
  belowSeq: number,
): Promise<number> {
  const below = trimPoint(await streamTip(jsm, names), belowSeq);
  if (below === 0) return 0;
  await jsm.streams.purge(names.stream, { seq: below });
  return below;
}

/**
 * A trim function for `@gc/snapshot`'s snapshotter (`trim` option) that keeps the stream's last
 * transaction (see {@link trimWalStream}).
 */
export function walTrimmer(nc: NatsConnection, names: WalNames): (belowSeq: number) => Promise<number> {
  let jsm: Promise<JetStreamManager> | undefined;
  return async (belowSeq) => trimWalStream(await (jsm ??= jetstreamManager(nc)), names, belowSeq);
}
