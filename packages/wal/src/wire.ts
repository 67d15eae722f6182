import { crc32 } from 'node:zlib';
import type { MsgHdrs } from '@nats-io/nats-core';
import { EPOCH_HEADER, parseEpoch } from '@gc/core';
import { formatChecksum, parseChecksum } from '@gc/sqlite';
import { CorruptMessageError } from './errors.js';
import { WireHeaders, headerMapOf, type HeaderMap } from './headers.js';

/** Header names of WAL stream messages (see the README's wire format). */
export const WalHeader = {
  Epoch: EPOCH_HEADER,
  Txid: 'Gc-Wal-Txid',
  Kind: 'Gc-Wal-Kind',
  PageSize: 'Gc-Wal-Page-Size',
  DbPages: 'Gc-Wal-Db-Pages',
  Pages: 'Gc-Wal-Pages',
  Before: 'Gc-Wal-Before',
  After: 'Gc-Wal-After',
  Chunk: 'Gc-Wal-Chunk',
  ChunkCrc: 'Gc-Wal-Chunk-Crc32',
  BodyBytes: 'Gc-Wal-Body-Bytes',
  CommitTime: 'Gc-Wal-Commit-Ms',
  /** Commits the message covers, `Gc-Wal-Txid` being the last; absent means 1. */
  Txs: 'Gc-Wal-Txs',
} as const;

/** What a WAL stream message carries. */
export const TxKind = {
  /**
   * Pages changed by consecutive commits (usually one; all those captured in one round when commits come
   * faster than they are published): the last version of each page; applies on top of the `before` state.
   */
  Tx: 'tx',
  /** The whole database (every page); replaces the state (first publish, or continuity lost). */
  Full: 'full',
  /** No pages: a new leader's epoch marker (fences the previous leader). */
  Epoch: 'epoch',
} as const;
/** One of {@link TxKind}. */
export type TxKindValue = (typeof TxKind)[keyof typeof TxKind];

/** The metadata of one transaction on the wire. */
export interface TxMeta {
  epoch: number;
  /** Txid of the (last) commit the message carries. */
  txid: number;
  /** How many consecutive commits it carries: txids `txid - txs + 1` to `txid`. */
  txs: number;
  kind: TxKindValue;
  pageSizeBytes: number;
  /** Database size in pages after the transaction. */
  dbPages: number;
  /** Number of page records in the body. */
  pages: number;
  before: bigint;
  after: bigint;
  /** Wall-clock ms when the primary captured the commit. */
  commitTimeMs: number;
}

/** One message of a transaction. */
export interface WireChunk {
  headers: MsgHdrs;
  data: Uint8Array;
  index: number;
  count: number;
}

/** Size of one page record in the body: page number (u32 BE) + page bytes. */
export function recordBytes(pageSizeBytes: number): number {
  return 4 + pageSizeBytes;
}

/** Encodes pages as a body: for each page, its number (u32 BE) then its bytes, in page order. */
export function encodeBody(
  pages: Iterable<[number, Uint8Array]>,
  pageSizeBytes: number,
  count: number,
): Buffer {
  const rec = recordBytes(pageSizeBytes);
  const body = Buffer.allocUnsafe(count * rec);
  let off = 0;
  for (const [pgno, page] of pages) {
    body.writeUInt32BE(pgno, off);
    body.set(page, off + 4);
    off += rec;
  }
  if (off !== body.length) throw new RangeError(`encodeBody: ${off / rec} pages given, ${count} announced`);
  return body;
}

/**
 * Splits a transaction into messages of at most `maxChunkBytes` of body each. Every message carries
 * all the metadata headers plus its chunk index/count and the CRC-32 of its own body bytes.
 */
export function encodeTx(meta: TxMeta, body: Uint8Array, maxChunkBytes: number): WireChunk[] {
  const count = Math.max(1, Math.ceil(body.length / maxChunkBytes));
  const out: WireChunk[] = [];
  for (let i = 0; i < count; i++) {
    const data = body.subarray(i * maxChunkBytes, Math.min(body.length, (i + 1) * maxChunkBytes));
    const h = new WireHeaders();
    h.append(WalHeader.Epoch, String(meta.epoch));
    h.append(WalHeader.Txid, String(meta.txid));
    h.append(WalHeader.Kind, meta.kind);
    h.append(WalHeader.PageSize, String(meta.pageSizeBytes));
    h.append(WalHeader.DbPages, String(meta.dbPages));
    h.append(WalHeader.Pages, String(meta.pages));
    h.append(WalHeader.Before, formatChecksum(meta.before));
    h.append(WalHeader.After, formatChecksum(meta.after));
    h.append(WalHeader.Chunk, `${i}/${count}`);
    h.append(WalHeader.ChunkCrc, crc32(data).toString(16).padStart(8, '0'));
    h.append(WalHeader.BodyBytes, String(body.length));
    h.append(WalHeader.CommitTime, String(meta.commitTimeMs));
    if (meta.txs > 1) h.append(WalHeader.Txs, String(meta.txs));
    out.push({ headers: h, data, index: i, count });
  }
  return out;
}

/** Parsed headers of one received message. */
export interface ParsedChunk {
  meta: TxMeta;
  index: number;
  count: number;
  bodyBytes: number;
}

const TX_KINDS: ReadonlySet<string> = new Set(Object.values(TxKind));
const NUMERIC_META = ['epoch', 'txid', 'txs', 'pageSizeBytes', 'dbPages', 'pages', 'commitTimeMs'] as const;

const int = (h: HeaderMap, k: string): number => {
  const v = Number(h.get(k) ?? '');
  return Number.isSafeInteger(v) && v >= 0 ? v : NaN;
};

/** Parses and checks one message (headers well-formed, CRC of its body). Throws {@link CorruptMessageError}. */
export function parseChunk(headers: MsgHdrs | undefined, data: Uint8Array, seq: number): ParsedChunk {
  return parseChunkHeaders(headerMapOf(headers), data, seq);
}

/** {@link parseChunk} on headers already read into a map (see `messageHeaders`). */
export function parseChunkHeaders(h: HeaderMap, data: Uint8Array, seq: number): ParsedChunk {
  const epoch = parseEpoch(h.get(WalHeader.Epoch) ?? '');
  const kind = (h.get(WalHeader.Kind) ?? '') as TxKindValue;
  const before = parseChecksum(h.get(WalHeader.Before));
  const after = parseChecksum(h.get(WalHeader.After));
  const chunk = /^(\d+)\/(\d+)$/.exec(h.get(WalHeader.Chunk) ?? '');
  const meta = {
    epoch: epoch ?? NaN,
    txid: int(h, WalHeader.Txid),
    txs: h.has(WalHeader.Txs) ? int(h, WalHeader.Txs) : 1,
    kind,
    pageSizeBytes: int(h, WalHeader.PageSize),
    dbPages: int(h, WalHeader.DbPages),
    pages: int(h, WalHeader.Pages),
    before: before ?? 0n,
    after: after ?? 0n,
    commitTimeMs: int(h, WalHeader.CommitTime),
  };
  const bad = NUMERIC_META.find((k) => Number.isNaN(meta[k]));
  if (bad || before === undefined || after === undefined || !chunk || !TX_KINDS.has(kind)) {
    throw new CorruptMessageError(seq, `malformed headers${bad ? ` (${bad})` : ''}`);
  }
  if (!(meta.txs >= 1 && meta.txs <= meta.txid) || (meta.kind !== TxKind.Tx && meta.txs !== 1)) {
    throw new CorruptMessageError(seq, `bad commit count ${meta.txs} for txid ${meta.txid}`);
  }
  const index = Number(chunk[1]);
  const count = Number(chunk[2]);
  if (!(count >= 1 && index < count)) throw new CorruptMessageError(seq, `bad chunk ${index}/${count}`);
  const crc = crc32(data).toString(16).padStart(8, '0');
  if (crc !== h.get(WalHeader.ChunkCrc))
    throw new CorruptMessageError(seq, `chunk CRC-32 ${crc} != ${h.get(WalHeader.ChunkCrc) ?? ''}`);
  const bodyBytes = int(h, WalHeader.BodyBytes);
  if (bodyBytes !== meta.pages * (meta.pages ? recordBytes(meta.pageSizeBytes) : 0)) {
    throw new CorruptMessageError(
      seq,
      `body length ${bodyBytes} does not fit ${meta.pages} pages of ${meta.pageSizeBytes} bytes`,
    );
  }
  return { meta, index, count, bodyBytes };
}

/** Collects the chunks of one transaction in order. */
export class TxAssembler {
  #meta: TxMeta | undefined;
  #parts: Uint8Array[] = [];
  #count = 0;
  #firstSeq = 0;

  /** Adds a chunk; returns the whole transaction when this was its last chunk. */
  add(
    c: ParsedChunk,
    data: Uint8Array,
    seq: number,
  ): { meta: TxMeta; body: Buffer; firstSeq: number; lastSeq: number } | undefined {
    if (c.index === 0) {
      this.#meta = c.meta;
      this.#parts = [];
      this.#count = c.count;
      this.#firstSeq = seq;
    } else if (
      !this.#meta ||
      this.#meta.txid !== c.meta.txid ||
      this.#parts.length !== c.index ||
      this.#count !== c.count
    ) {
      this.reset();
      throw new CorruptMessageError(
        seq,
        `chunk ${c.index}/${c.count} of txid ${c.meta.txid} arrived out of order`,
      );
    }
    this.#parts.push(data);
    if (this.#parts.length < this.#count) return undefined;
    const meta = this.#meta;
    // One chunk (the usual case): a view of the received bytes, not a copy (nats.js hands each message a
    // buffer of its own read, which nothing writes to again).
    const only = this.#parts.length === 1 ? this.#parts[0]! : undefined;
    const body = only
      ? Buffer.from(only.buffer, only.byteOffset, only.byteLength)
      : Buffer.concat(this.#parts);
    const firstSeq = this.#firstSeq;
    this.reset();
    if (body.length !== c.bodyBytes)
      throw new CorruptMessageError(seq, `assembled ${body.length} bytes, expected ${c.bodyBytes}`);
    return { meta, body, firstSeq, lastSeq: seq };
  }

  /** Drops a partial transaction. */
  reset(): void {
    this.#meta = undefined;
    this.#parts = [];
    this.#count = 0;
  }
}

/** Iterates the page records of a body. */
export function* bodyPages(body: Buffer, pageSizeBytes: number): Generator<[number, Buffer]> {
  const rec = recordBytes(pageSizeBytes);
  for (let off = 0; off + rec <= body.length; off += rec) {
    yield [body.readUInt32BE(off), body.subarray(off + 4, off + rec)];
  }
}
