import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { FencedError, WriteConflictError } from './errors.js';
import { fencedKv, type FencedKvBucket } from './fenced-kv.js';

// The fencing logic against an in-process bucket with the compare-and-set semantics of NATS KV (and a hook
// to run a competing write between a read and the write that follows it). e2e/election/fenced-kv.e2e.test.ts
// runs two writer processes against a real NATS KV bucket.

class MemoryBucket implements FencedKvBucket {
  seq = 0;
  readonly entries = new Map<string, { revision: number; value: Uint8Array; operation: string }>();
  /** Runs once after the next get(): a write that lands between a read and the CAS based on it. */
  afterGet: (() => void) | undefined;

  async get(key: string) {
    const e = this.entries.get(key) ?? null;
    const hook = this.afterGet;
    this.afterGet = undefined;
    hook?.();
    return Promise.resolve(e && { ...e });
  }

  #cas(key: string, data: Uint8Array, version: number): number {
    const last = this.entries.get(key)?.revision ?? 0;
    if (last !== version)
      // What the server answers to a lost CAS (the client turns it into this class, code 10071).
      throw new JetStreamApiError({
        code: 400,
        err_code: 10071,
        description: `wrong last sequence: ${last}`,
      });
    this.entries.set(key, { revision: ++this.seq, value: data, operation: 'PUT' });
    return this.seq;
  }

  create(key: string, data: Uint8Array) {
    return Promise.resolve().then(() => this.#cas(key, data, 0));
  }

  update(key: string, data: Uint8Array, version: number) {
    return Promise.resolve().then(() => this.#cas(key, data, version));
  }

  /** Another writer's fenced record, stored at once (as if its CAS had landed just now). */
  writeNow(key: string, epoch: number, value: string): void {
    const data = new TextEncoder().encode(`gcf1 ${epoch} p\n${value}`);
    this.entries.set(key, { revision: ++this.seq, value: data, operation: 'PUT' });
  }

  /** A KV delete (no epoch in it), as `kv.delete` would write. */
  kvDelete(key: string): void {
    this.entries.set(key, { revision: ++this.seq, value: new Uint8Array(0), operation: 'DEL' });
  }
}

const text = (v: Uint8Array | undefined) => new TextDecoder().decode(v);

describe('fencedKv', () => {
  it('stores values with the epoch and reads them back', async () => {
    const b = new MemoryBucket();
    const kv = fencedKv(b, { epoch: () => 5 });
    const r1 = await kv.put('k', 'hello');
    expect(await kv.get('k')).toEqual({
      key: 'k',
      value: new TextEncoder().encode('hello'),
      epoch: 5,
      revision: r1,
    });
    expect(text(b.entries.get('k')?.value)).toBe('gcf1 5 p\nhello');
    expect(await kv.get('missing')).toBeNull();
  });

  it('refuses a lower epoch after a higher one wrote the key, with FencedError and onFenced', async () => {
    const b = new MemoryBucket();
    let epoch = 7;
    const seen: number[] = [];
    const kv = fencedKv(b, { epoch: () => epoch, onFenced: (err) => seen.push(err.highest) });
    await kv.put('k', 'new leader');
    epoch = 6;
    const err = await kv.put('k', 'old leader').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(err).toMatchObject({ code: 'GC_FENCED', epoch: 6, highest: 7 });
    expect(seen).toEqual([7]);
    expect(text((await kv.get('k'))?.value)).toBe('new leader');
    epoch = 7;
    await kv.put('k', 'same epoch again'); // equal epochs are accepted (the same leader)
    epoch = 8;
    await kv.put('k', 'next leader');
  });

  it('a higher epoch that writes between the check and the CAS makes the lower write fail, never succeed', async () => {
    const b = new MemoryBucket();
    const oldLeader = fencedKv(b, { epoch: () => 3 });
    await oldLeader.put('k', 'a');
    // The old leader reads (epoch 3 ≤ 3: fine), then the new leader's write lands before its CAS.
    b.afterGet = () => b.writeNow('k', 4, 'b');
    const err = await oldLeader.put('k', 'late').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(err).toMatchObject({ epoch: 3, highest: 4 });
    expect(text((await oldLeader.get('k'))?.value)).toBe('b');
  });

  it('without an epoch (not the leader) every write is refused', async () => {
    const b = new MemoryBucket();
    await fencedKv(b, { epoch: () => 9 }).put('k', 'x');
    const kv = fencedKv(b, { epoch: () => undefined });
    await expect(kv.put('k', 'y')).rejects.toMatchObject({ code: 'GC_FENCED', epoch: 0, highest: 9 });
    await expect(kv.delete('k')).rejects.toBeInstanceOf(FencedError);
  });

  it('delete writes a tombstone that keeps the epoch: a stale writer cannot recreate the key', async () => {
    const b = new MemoryBucket();
    let epoch = 2;
    const kv = fencedKv(b, { epoch: () => epoch });
    await kv.put('k', 'x');
    epoch = 3;
    await kv.delete('k');
    expect(await kv.get('k')).toBeNull();
    epoch = 2;
    await expect(kv.put('k', 'stale')).rejects.toBeInstanceOf(FencedError);
    epoch = 3;
    expect(await kv.update('k', 'again', 0)).toBeGreaterThan(0); // revision 0 = "no value": a tombstone counts
  });

  it('update is a read-modify-write on a revision: a changed key fails with WriteConflictError', async () => {
    const b = new MemoryBucket();
    const kv = fencedKv(b, { epoch: () => 1 });
    const r1 = await kv.put('counter', '1');
    const r2 = await kv.update('counter', '2', r1);
    await expect(kv.update('counter', '3', r1)).rejects.toMatchObject({
      code: 'GC_WRITE_CONFLICT',
      expectedRevision: r1,
      actualRevision: r2,
    });
    await expect(kv.update('fresh', 'x', 5)).rejects.toBeInstanceOf(WriteConflictError);
    expect(await kv.update('fresh', 'x', 0)).toBeGreaterThan(r2);
  });

  it('retries races between writers of the same epoch, a bounded number of times', async () => {
    const b = new MemoryBucket();
    const kv = fencedKv(b, { epoch: () => 1, retries: 2 });
    await kv.put('k', '0');
    b.afterGet = () => b.writeNow('k', 1, 'other');
    expect(await kv.put('k', 'mine')).toBeGreaterThan(0); // lost once, retried, won
    expect(text((await kv.get('k'))?.value)).toBe('mine');
    let races = 0;
    const always = () => {
      races++;
      b.writeNow('k', 1, `other ${races}`);
      b.afterGet = always;
    };
    b.afterGet = always;
    await expect(kv.put('k', 'never')).rejects.toBeInstanceOf(WriteConflictError);
    b.afterGet = undefined;
    expect(races).toBe(3); // the first try and 2 retries
  });

  it('a value written without fencing (or deleted with kv.delete) counts as epoch 0', async () => {
    const b = new MemoryBucket();
    await b.create('k', new TextEncoder().encode('plain'));
    const kv = fencedKv(b, { epoch: () => 1 });
    expect(await kv.get('k')).toMatchObject({ epoch: 0, value: new TextEncoder().encode('plain') });
    await kv.put('k', 'fenced');
    b.kvDelete('k');
    expect(await kv.get('k')).toBeNull();
    await kv.put('k', 'after a kv delete');
    expect((await kv.get('k'))?.epoch).toBe(1);
  });

  it('checks its options', () => {
    expect(() => fencedKv(new MemoryBucket(), { epoch: () => 1, retries: -1 })).toThrow(RangeError);
  });
});
