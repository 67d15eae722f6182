import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, startServer, type NatsServer } from '@gc/testkit';
import { WireHeaders, headerMapOf, messageHeaders, parseHeaderBlock, rawHeaderBlock } from './headers.js';
import { CorruptMessageError } from './errors.js';
import { TxKind, encodeBody, encodeTx, parseChunk, parseChunkHeaders } from './wire.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: server.url });
  await (await jetstreamManager(nc)).streams.add({ name: 'hdrtest', subjects: ['hdrtest.x'] });
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
});

/** Random header lists: printable keys (some repeated), values with inner and outer spaces, empty ones. */
function randomHeaders(seed: number): Array<[string, string]> {
  const rnd = seededRandom(seed);
  const pick = (chars: string, n: number) =>
    Array.from({ length: n }, () => chars[Math.floor(rnd() * chars.length)]).join('');
  const keys = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () =>
    pick('abcXYZ-_09.', 1 + Math.floor(rnd() * 12)),
  );
  return Array.from({ length: Math.floor(rnd() * 20) }, () => [
    keys[Math.floor(rnd() * keys.length)]!,
    pick('ab c:9/é-', Math.floor(rnd() * 30)),
  ]);
}

async function roundTrip(
  h: WireHeaders | ReturnType<typeof headers>,
  data: Uint8Array = new Uint8Array([1, 2, 3]),
): Promise<JsMsg> {
  const js = jetstream(nc);
  const { seq } = await js.publish('hdrtest.x', data, { headers: h });
  const consumer = await js.consumers.get('hdrtest', {
    opt_start_seq: seq,
    deliver_policy: 'by_start_sequence',
  });
  const m = await consumer.next({ expires: 5000 });
  if (!m) throw new Error('no message');
  return m;
}

describe('WireHeaders', () => {
  it('encodes the bytes nats.js encodes for the same appends, over 200 seeds', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const ours = new WireHeaders();
      const theirs = headers();
      for (const [k, v] of randomHeaders(seed)) {
        ours.append(k, v);
        theirs.append(k, v);
      }
      if (theirs.keys().length === 0) continue; // nats.js encodes no headers as an empty block
      expect(Buffer.from(ours.encode()).toString('utf8'), `seed ${seed}`).toBe(
        Buffer.from((theirs as unknown as { encode(): Uint8Array }).encode()).toString('utf8'),
      );
      // Read back: nats.js's decoder and ours give the same first values.
      expect(parseHeaderBlock(ours.encode()), `seed ${seed}`).toEqual(headerMapOf(theirs));
    }
  });

  it('sets, deletes and reads values as MsgHdrs does for exact keys', () => {
    const h = new WireHeaders();
    h.append('A', '1');
    h.append('B', '2');
    h.append('A', '3');
    expect([h.get('A'), h.last('A'), h.values('A'), h.has('C'), h.keys()]).toEqual([
      '1',
      '3',
      ['1', '3'],
      false,
      ['A', 'B'],
    ]);
    h.set('A', '4');
    expect([...h]).toEqual([
      ['B', ['2']],
      ['A', ['4']],
    ]);
    h.delete('B');
    expect(Buffer.from(h.encode()).toString()).toBe('NATS/1.0\r\nA: 4\r\n\r\n');
  });

  it.each([
    ['a name with a colon', 'A:B', 'v'],
    ['a name with a space', 'A B', 'v'],
    ['an empty name', '', 'v'],
    ['a value with a line break', 'A', 'x\r\nB: y'],
  ])('refuses %s', (_what, k, v) => {
    expect(() => new WireHeaders().append(k, v)).toThrow(TypeError);
  });
});

describe('messageHeaders', () => {
  it('reads the raw header block of a delivered message (the fast path is taken with this nats.js)', async () => {
    const h = new WireHeaders();
    h.append('Gc-Wal-Txid', '42');
    h.append('Gc-Wal-Kind', 'tx');
    h.append('Gc-Wal-Kind', 'second value ignored');
    const m = await roundTrip(h);
    expect(
      rawHeaderBlock(m),
      'nats.js no longer keeps the raw header block where messageHeaders reads it',
    ).toBeDefined();
    const map = messageHeaders(m);
    expect(map).toEqual(headerMapOf(m.headers));
    expect(map.get('Gc-Wal-Txid')).toBe('42');
    expect(map.get('Gc-Wal-Kind')).toBe('tx');
    expect(Buffer.from(m.data).equals(Buffer.from([1, 2, 3]))).toBe(true);
  });

  it('a header block nats.js would refuse (a key with a space) makes the message corrupt, not unreadable', () => {
    const [chunk] = encodeTx(
      {
        epoch: 1,
        txid: 1,
        txs: 1,
        kind: TxKind.Tx,
        pageSizeBytes: 4096,
        dbPages: 1,
        pages: 0,
        before: 0n,
        after: 0n,
        commitTimeMs: 1,
      },
      Buffer.alloc(0),
      1 << 20,
    );
    const block = Buffer.from((chunk!.headers as WireHeaders).encode())
      .toString()
      .replace('Gc-Wal-Txid:', 'Gc-Wal Txid:');
    expect(() => parseChunkHeaders(parseHeaderBlock(Buffer.from(block)), chunk!.data, 3)).toThrow(
      CorruptMessageError,
    );
  });

  it('falls back to the decoded headers when the raw block is not where it expects', () => {
    const decoded = headers();
    decoded.append('K', 'v');
    expect(messageHeaders({ headers: decoded })).toEqual(new Map([['K', 'v']]));
    expect(messageHeaders({ headers: undefined })).toEqual(new Map());
  });

  it('gives the same parsed chunk as the MsgHdrs path for a WAL message sent through the server', async () => {
    const page = Buffer.alloc(4096, 7);
    const meta = {
      epoch: 2,
      txid: 9,
      txs: 3,
      kind: TxKind.Tx,
      pageSizeBytes: 4096,
      dbPages: 5,
      pages: 1,
      before: 0x0123456789abcdefn,
      after: 0xfedcba9876543210n,
      commitTimeMs: 1_700_000_000_000,
    };
    const [chunk] = encodeTx(meta, encodeBody([[3, page]], 4096, 1), 1 << 20);
    chunk!.headers.append('Nats-Msg-Id', 'hdrtest:2:9:0');
    const m = await roundTrip(chunk!.headers, chunk!.data);
    const fast = parseChunkHeaders(messageHeaders(m), m.data, m.seq);
    expect(fast).toEqual(parseChunk(m.headers, m.data, m.seq));
    expect(fast.meta).toEqual(meta);
  });
});
