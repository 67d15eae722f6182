import { describe, expect, it } from 'vitest';
import { CorruptMessageError } from './errors.js';
import { TxKind, WalHeader, encodeBody, encodeTx, parseChunk, type TxMeta } from './wire.js';

const page = Buffer.alloc(4096, 1);
const meta = (over: Partial<TxMeta> = {}): TxMeta => ({
  epoch: 3,
  txid: 10,
  txs: 1,
  kind: TxKind.Tx,
  pageSizeBytes: 4096,
  dbPages: 2,
  pages: 1,
  before: 1n,
  after: 2n,
  commitTimeMs: 1,
  ...over,
});

describe('wire: commit groups', () => {
  it('round-trips the commit count, and omits the header for a single commit', () => {
    const body = encodeBody([[2, page]], 4096, 1);
    const [one] = encodeTx(meta(), body, 1 << 20);
    expect(one!.headers.has(WalHeader.Txs)).toBe(false);
    expect(parseChunk(one!.headers, one!.data, 1).meta.txs).toBe(1);
    const [group] = encodeTx(meta({ txs: 7 }), body, 1 << 20);
    expect(group!.headers.get(WalHeader.Txs)).toBe('7');
    expect(parseChunk(group!.headers, group!.data, 1).meta).toMatchObject({ txid: 10, txs: 7 });
  });

  it.each([
    ['zero commits', '0', TxKind.Tx],
    ['more commits than txids', '11', TxKind.Tx],
    ['not a number', 'x', TxKind.Tx],
    ['a full database covering several commits', '2', TxKind.Full],
  ])('refuses %s', (_what, value, kind) => {
    const body = encodeBody([[2, page]], 4096, 1);
    const [c] = encodeTx(meta({ kind }), body, 1 << 20);
    c!.headers.set(WalHeader.Txs, value);
    expect(() => parseChunk(c!.headers, c!.data, 5)).toThrow(CorruptMessageError);
  });
});
