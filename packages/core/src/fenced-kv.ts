import { isWrongLastSequence, jsApiCode } from './nats-errors.js';
import { JetStreamApiCodes } from '@nats-io/jetstream';
import type { Epoch } from './epoch.js';
import { FencedError, WriteConflictError } from './errors.js';

/**
 * The part of a NATS KV bucket (`KV` from `@nats-io/kv`) that {@link fencedKv} uses. A bucket opened with
 * `new Kvm(js).open(name)` (or `create`) fits as it is.
 */
export interface FencedKvBucket {
  /** The last entry of `key` (deletions included), or null when the key has none. */
  get(key: string): Promise<{ revision: number; value: Uint8Array; operation: string } | null>;
  /** Writes `data` if `key` has no entry; returns the new revision. */
  create(key: string, data: Uint8Array): Promise<number>;
  /** Writes `data` if the last revision of `key` is `version`; returns the new revision. */
  update(key: string, data: Uint8Array, version: number): Promise<number>;
}

/** Options of {@link fencedKv}. */
export interface FencedKvOptions {
  /**
   * The epoch every write carries, read at the start of each write. Return `undefined` (or 0) when this
   * node may not write: the write is then refused with {@link FencedError}. With an election:
   * `() => (election.isLeader() ? election.epoch() : undefined)`.
   */
  epoch: () => Epoch | undefined;
  /**
   * Called with the error each time a write is refused because the key carries a higher epoch; typically
   * `(err) => election.observeEpoch(err.highest)`, so a deposed leader stops at once. Default none.
   */
  onFenced?: (err: FencedError) => void;
  /**
   * How many times a write that lost a compare-and-set race is retried (re-read, re-checked, re-written)
   * before it fails with {@link WriteConflictError}. Races are between writers of the same or a lower epoch
   * (a higher epoch makes the retry fail with {@link FencedError}). Default 8.
   */
  retries?: number;
  /** A name for error messages (for example the bucket). Default `kv`. */
  name?: string;
}

/** A value read through {@link FencedKv.get}. */
export interface FencedEntry {
  key: string;
  /** The value as the writer gave it. */
  value: Uint8Array;
  /** Epoch of the write that stored it (0 for a value written without fencing). */
  epoch: Epoch;
  /** KV revision of the entry (pass it to {@link FencedKv.update}). */
  revision: number;
}

/**
 * Writes to a NATS KV bucket that the server refuses when they carry a lower epoch than the key's last
 * write: every value is stored in a record that carries its writer's epoch, and every write is a
 * compare-and-set on the revision of the record whose epoch it checked. A write with epoch `e` is stored
 * only if the key's last record still is the one it read, with an epoch ≤ `e`; so the epochs of a key's
 * records never decrease, whatever the timing, and a deposed leader's late write fails with
 * {@link FencedError} once its successor has written the key.
 *
 * The fence is per key (each key's records carry their own highest epoch): keep state that must be fenced
 * together under one key. Deletions are records too (tombstones that keep the epoch); never use `kv.delete`,
 * `kv.purge` or a per-key TTL on fenced keys, they would drop the epoch. Values are stored with a short
 * text prefix (`gcf1 <epoch> p\n`); read them with {@link FencedKv.get}.
 */
export interface FencedKv {
  /** The value of `key`, or null when it has none (never written, or deleted by {@link FencedKv.delete}). */
  get(key: string): Promise<FencedEntry | null>;
  /**
   * Stores `value` under `key` with the current epoch; returns the new revision. Throws {@link FencedError}
   * when the key carries a higher epoch, {@link WriteConflictError} when it lost `retries` races in a row.
   */
  put(key: string, value: Uint8Array | string): Promise<number>;
  /**
   * Like {@link FencedKv.put}, but only if the key's last revision is `revision` (a read-modify-write):
   * throws {@link WriteConflictError} at once when it is not. `revision` 0: only if the key has no value.
   */
  update(key: string, value: Uint8Array | string, revision: number): Promise<number>;
  /** Deletes `key` by writing a tombstone that keeps the epoch (fenced like a put). Returns its revision. */
  delete(key: string): Promise<number>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Decoded {
  epoch: Epoch;
  deleted: boolean;
  value: Uint8Array;
}

/**
 * Decodes a value a {@link FencedKv} stored, as a bucket watch or a plain `kv.get` returns it: its writer's
 * epoch, whether it is a deletion, and the value. A value without the prefix counts as written with epoch 0.
 */
export function decodeFenced(bytes: Uint8Array): { epoch: Epoch; deleted: boolean; value: Uint8Array } {
  return decode(bytes);
}

function decode(bytes: Uint8Array): Decoded {
  const m = /^gcf1 (\d{1,16}) ([pd])\n/.exec(dec.decode(bytes.subarray(0, Math.min(bytes.length, 24))));
  const n = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(n)) return { epoch: 0, deleted: false, value: bytes };
  return { epoch: n, deleted: m[2] === 'd', value: bytes.subarray(m[0].length) };
}

function encode(epoch: Epoch, deleted: boolean, value: Uint8Array): Uint8Array {
  const head = enc.encode(`gcf1 ${epoch} ${deleted ? 'd' : 'p'}\n`);
  const out = new Uint8Array(head.length + value.length);
  out.set(head);
  out.set(value, head.length);
  return out;
}

function isConflict(err: unknown): boolean {
  return isWrongLastSequence(err) || jsApiCode(err) === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
}

/**
 * Wraps a KV bucket so that writes carry an epoch and are refused, atomically on the server, when the key
 * already holds a write with a higher epoch. See {@link FencedKv}.
 *
 * @example
 * const kv = await new Kvm(nc).create('shop_orders');
 * const orders = fencedKv(kv, {
 *   epoch: () => (election.isLeader() ? election.epoch() : undefined),
 *   onFenced: (err) => election.observeEpoch(err.highest),
 * });
 * await orders.put('last-order', JSON.stringify(order)); // FencedError if a newer leader wrote it
 */
export function fencedKv(kv: FencedKvBucket, opts: FencedKvOptions): FencedKv {
  const retries = opts.retries ?? 8;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`fencedKv: retries must be a non-negative integer, got ${String(opts.retries)}`);
  }
  const name = opts.name ?? 'kv';

  const refuse = (what: string, epoch: Epoch, highest: Epoch): never => {
    const err = new FencedError(what, epoch, highest);
    opts.onFenced?.(err);
    throw err;
  };

  const write = async (key: string, value: Uint8Array, deleted: boolean, expected?: number) => {
    const what = `${deleted ? 'delete' : 'write'} of ${name}/${key}`;
    const epoch = opts.epoch() ?? 0;
    if (!Number.isSafeInteger(epoch) || epoch < 1) {
      const cur = await kv.get(key);
      refuse(
        `${what} without an epoch (not the leader)`,
        0,
        cur?.operation === 'PUT' ? decode(cur.value).epoch : 0,
      );
    }
    const data = encode(epoch, deleted, value);
    for (let attempt = 0; ; attempt++) {
      const cur = await kv.get(key);
      const revision = cur?.revision ?? 0;
      if (expected !== undefined && revision !== expected) {
        // A deletion of ours counts as "no value": update(key, v, 0) may replace a tombstone.
        const tomb = cur && cur.operation === 'PUT' && expected === 0 && decode(cur.value).deleted;
        if (!tomb) throw new WriteConflictError(`${name}/${key}`, expected, revision);
      }
      if (cur && cur.operation === 'PUT') {
        const stored = decode(cur.value).epoch;
        if (stored > epoch) refuse(what, epoch, stored);
      }
      try {
        // Compare-and-set on the revision whose epoch was just checked: nothing can slip in between.
        return revision === 0 ? await kv.create(key, data) : await kv.update(key, data, revision);
      } catch (err) {
        if (!isConflict(err)) throw err;
        if (expected !== undefined || attempt >= retries) {
          throw new WriteConflictError(`${name}/${key}`, expected ?? revision, undefined, { cause: err });
        }
      }
    }
  };

  return {
    async get(key) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT') return null;
      const d = decode(e.value);
      return d.deleted ? null : { key, value: d.value, epoch: d.epoch, revision: e.revision };
    },
    put: (key, value) => write(key, typeof value === 'string' ? enc.encode(value) : value, false),
    update: (key, value, revision) =>
      write(key, typeof value === 'string' ? enc.encode(value) : value, false, revision),
    delete: (key) => write(key, new Uint8Array(0), true),
  };
}
