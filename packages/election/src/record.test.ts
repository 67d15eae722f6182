// parseRecord / leaseRecordSchema against seeded random corruptions of valid lease records: the parser never
// throws, never returns a record that violates LeaseRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { Rng } from '@gc/testkit';
import { leaseRecordSchema, parseRecord } from './record.js';
import type { LeaseRecord } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The hand-written parser the schema replaced (verbatim): the oracle. */
function legacyParseRecord(bytes: Uint8Array): LeaseRecord | null {
  if (bytes.length === 0) return null;
  try {
    const r = JSON.parse(dec.decode(bytes)) as Partial<LeaseRecord>;
    if (typeof r.holder !== 'string' || typeof r.epoch !== 'number' || typeof r.ttlMs !== 'number')
      return null;
    return {
      holder: r.holder,
      instance: typeof r.instance === 'string' ? r.instance : '',
      epoch: r.epoch,
      ttlMs: r.ttlMs,
      live: r.live === true,
      priority: typeof r.priority === 'number' ? r.priority : 0,
      grantedAt: typeof r.grantedAt === 'number' ? r.grantedAt : 0,
    };
  } catch {
    return null;
  }
}

// ---- what the type allows, checked by hand (independent of zod) ----

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const bool: Check = (v) => typeof v === 'boolean';
const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every way `v` is not an object with exactly the `required` (and possibly the `optional`) fields. */
function violations(
  v: unknown,
  required: Record<string, Check>,
  optional: Record<string, Check> = {},
): string[] {
  if (!isPlain(v)) return [`not an object: ${JSON.stringify(v)}`];
  const out: string[] = [];
  for (const [k, ok] of Object.entries(required)) {
    if (!(k in v) || !ok(v[k])) out.push(`${k}: ${String(JSON.stringify(v[k]))}`);
  }
  for (const [k, ok] of Object.entries(optional)) {
    if (k in v && !ok(v[k])) out.push(`${k}: ${String(JSON.stringify(v[k]))}`);
  }
  for (const k of Object.keys(v)) if (!(k in required) && !(k in optional)) out.push(`unexpected key ${k}`);
  return out;
}

// ---- seeded corruptions ----

const WEIRD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  -0.5,
  1.5,
  2 ** 60,
  '',
  'x',
  'node-b',
  'true',
  [],
  ['a', 1],
  {},
  { a: 1 },
];

/** A fresh copy of one of {@link WEIRD}. */
const weird = (rng: Rng): unknown => structuredClone(rng.pick(WEIRD));

/** A deep copy of `base` with 1 to 3 fields changed to wrong types, dropped, added or changed inside. */
function mutate(rng: Rng, base: Record<string, unknown>): Record<string, unknown> {
  const r = structuredClone(base);
  for (let n = rng.int(1, 3); n > 0; n--) {
    const k = rng.pick(Object.keys(base));
    const op = rng.weighted({ wrong: 5, drop: 3, extra: 2, inner: 2 });
    if (op === 'wrong') r[k] = weird(rng);
    else if (op === 'drop') delete r[k];
    else if (op === 'extra') r[`extra${rng.int(0, 3)}`] = weird(rng);
    else {
      const v = r[k];
      if (Array.isArray(v)) v[rng.int(0, v.length)] = weird(rng);
      else if (isPlain(v)) {
        const keys = Object.keys(v);
        if (keys.length && rng.chance(0.3)) delete v[rng.pick(keys)];
        else v[rng.chance(0.7) && keys.length ? rng.pick(keys) : 'extra'] = weird(rng);
      } else r[k] = weird(rng);
    }
  }
  return r;
}

/** `json` as bytes, sometimes corrupted: a number out of range, cut short, a byte changed, garbage. */
function toBytes(rng: Rng, json: string): Uint8Array {
  const op = rng.weighted({ none: 8, infinite: 1, truncate: 1, flip: 1, garbage: 1, other: 1 });
  if (op === 'infinite') return enc.encode(json.replace(/-?\d+(\.\d+)?/, rng.pick(['1e999', '-1e999'])));
  const b = enc.encode(json);
  if (op === 'truncate') return b.subarray(0, rng.int(0, b.length - 1));
  if (op === 'flip') {
    b[rng.int(0, b.length - 1)] = rng.int(0, 255);
    return b;
  }
  if (op === 'garbage') return Uint8Array.from({ length: rng.int(0, 40) }, () => rng.int(0, 255));
  if (op === 'other') return enc.encode(rng.pick(['null', '[]', '42', '"node-a"', 'true', '[{}]', '{}']));
  return b;
}

const leaseViolations = (v: unknown) =>
  violations(v, {
    holder: str,
    instance: str,
    epoch: num,
    ttlMs: num,
    live: bool,
    priority: num,
    grantedAt: num,
  });

const VALID = {
  holder: 'node-a',
  instance: 'k2xQ9aLm3',
  epoch: 1767225600123,
  ttlMs: 3000,
  live: true,
  priority: 10,
  grantedAt: 1767225600100,
};

describe('parseRecord (lease record)', () => {
  it('reads valid records, and records of older versions with fields missing, as before', () => {
    expect(parseRecord(enc.encode(JSON.stringify(VALID)))).toStrictEqual(VALID);
    expect(parseRecord(enc.encode('{"holder":"n1","epoch":5,"ttlMs":3000}'))).toStrictEqual({
      holder: 'n1',
      instance: '',
      epoch: 5,
      ttlMs: 3000,
      live: false,
      priority: 0,
      grantedAt: 0,
    });
    // Unknown fields (a newer node's) are accepted and dropped.
    const newer = { ...VALID, v: 2, zone: 'eu', caps: { fast: true } };
    expect(parseRecord(enc.encode(JSON.stringify(newer)))).toStrictEqual(VALID);
  });

  it('rejects what is not a lease record and never throws', () => {
    for (const s of [
      '',
      'not json',
      'null',
      '[]',
      '42',
      '{}',
      '{"holder":"n1","epoch":1}',
      '{"holder":1,"epoch":1,"ttlMs":1}',
    ])
      expect(parseRecord(enc.encode(s)), s).toBeNull();
    expect(parseRecord(Uint8Array.of(0xff, 0xfe, 0x00))).toBeNull();
    expect(parseRecord(enc.encode(JSON.stringify({ ...VALID, live: 'true', priority: '9' })))).toStrictEqual({
      ...VALID,
      live: false,
      priority: 0,
    });
  });

  it('never throws, never accepts a record violating LeaseRecord, and agrees with the old parser (seeded)', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      for (let i = 0; i < 3000; i++) {
        const bytes = toBytes(rng, JSON.stringify(mutate(rng, VALID)));
        const what = `seed ${seed} case ${i}: ${dec.decode(bytes)}`;
        let got: LeaseRecord | null = null;
        expect(() => (got = parseRecord(bytes)), what).not.toThrow();
        if (got !== null) expect(leaseViolations(got), what).toEqual([]);
        const old = legacyParseRecord(bytes);
        // Where the old parser found no record, neither does the new one; where it returned a valid
        // record, the new one returns the same. (Where the old one let an infinite number through, the new
        // one rejects or defaults it, checked above.)
        if (old === null) expect(got, what).toBeNull();
        else if (leaseViolations(old).length === 0) expect(got, what).toStrictEqual(old);
      }
    }
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    const rng = new Rng(7);
    const odd = [NaN, Infinity, -Infinity, -1, undefined, 0n, Symbol('s'), () => 1, new Date(0)];
    for (let i = 0; i < 3000; i++) {
      const r = mutate(rng, VALID);
      r[rng.pick(Object.keys(r))] = rng.pick(odd);
      let out: ReturnType<typeof leaseRecordSchema.safeParse> | undefined;
      expect(() => (out = leaseRecordSchema.safeParse(r)), `case ${i}`).not.toThrow();
      if (out!.success) expect(leaseViolations(out!.data), `case ${i}`).toEqual([]);
    }
    expect(leaseRecordSchema.safeParse({ ...VALID, epoch: NaN }).success).toBe(false);
    expect(leaseRecordSchema.safeParse({ ...VALID, ttlMs: Infinity }).success).toBe(false);
    expect(leaseRecordSchema.parse({ ...VALID, priority: NaN }).priority).toBe(0);
  });
});
