import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { resourceNames } from '@gc/core';
import { parseChecksum } from '@gc/snapshot';
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
    if (!/not found/i.test((err as Error).message)) throw err;
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
      if (!/already in use|already exists/i.test((e as Error).message)) throw e;
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
  return {
    completeSeq: m.seq,
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
