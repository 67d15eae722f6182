// parseLockRecord / lockRecordSchema against seeded random corruptions of valid records: the parser never
// throws, never returns a record that violates LockRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { Rng } from '@gc/testkit';
import { lockRecordSchema, parseLockRecord } from './records.js';
import type { LockRecord } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The hand-written parser the schema replaced (verbatim but for the types): the oracle. */
function legacyParseLockRecord(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return null;
  try {
    const r = JSON.parse(dec.decode(bytes)) as Partial<LockRecord>;
    if ((r.state !== 'held' && r.state !== 'free') || typeof r.epoch !== 'number') return null;
    return {
      v: 1,
      state: r.state,
      epoch: r.epoch,
      owner: typeof r.owner === 'string' ? r.owner : '?',
      instance: typeof r.instance === 'string' ? r.instance : '',
      token: typeof r.token === 'string' ? r.token : '',
      ttlMs: typeof r.ttlMs === 'number' && r.ttlMs > 0 ? r.ttlMs : 0,
      acquiredAt: typeof r.acquiredAt === 'number' ? r.acquiredAt : 0,
      refreshedAt: typeof r.refreshedAt === 'number' ? r.refreshedAt : 0,
      ...(r.released ? { released: r.released } : {}),
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

const releaseOk: Check = (v) => violations(v, { by: str, reason: str, at: num, forced: bool }).length === 0;
const lockViolations = (v: unknown) =>
  violations(
    v,
    {
      v: (x) => x === 1,
      state: (x) => x === 'held' || x === 'free',
      epoch: num,
      owner: str,
      instance: str,
      token: str,
      ttlMs: (x) => num(x) && (x as number) >= 0,
      acquiredAt: num,
      refreshedAt: num,
    },
    { released: releaseOk },
  );

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
  'held',
  'free',
  [],
  ['a', 1],
  {},
  { a: 1 },
  { by: 'op', reason: 'r', at: 1, forced: 'yes' },
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
  if (op === 'other') return enc.encode(rng.pick(['null', '[]', '42', '"held"', 'true', '[{}]', '{}']));
  return b;
}

const VALID_HELD = {
  v: 1,
  state: 'held',
  epoch: 1767225600123,
  owner: 'node-a',
  instance: 'Xc3aQ',
  token: 'tok-8f2a',
  ttlMs: 10000,
  acquiredAt: 1767225600000,
  refreshedAt: 1767225605000,
};
const VALID_FREE = {
  ...VALID_HELD,
  state: 'free',
  released: { by: 'ops', reason: 'wedged', at: 1767225609000, forced: true },
};

describe('parseLockRecord', () => {
  it('reads valid records, and records of older versions with fields missing, as before', () => {
    expect(parseLockRecord(enc.encode(JSON.stringify(VALID_HELD)))).toStrictEqual(VALID_HELD);
    expect(parseLockRecord(enc.encode(JSON.stringify(VALID_FREE)))).toStrictEqual(VALID_FREE);
    expect(parseLockRecord(enc.encode('{"state":"free","epoch":3}'))).toStrictEqual({
      v: 1,
      state: 'free',
      epoch: 3,
      owner: '?',
      instance: '',
      token: '',
      ttlMs: 0,
      acquiredAt: 0,
      refreshedAt: 0,
    });
    // Unknown fields (a newer node's) are accepted and dropped; a newer schema version is read as 1.
    const newer = { ...VALID_HELD, v: 2, lease: { kind: 'x' }, region: 'eu' };
    expect(parseLockRecord(enc.encode(JSON.stringify(newer)))).toStrictEqual(VALID_HELD);
  });

  it('rejects what is not a lock record and never throws', () => {
    for (const s of [
      '',
      'not json',
      'null',
      '[]',
      '42',
      '{}',
      '{"state":"held"}',
      '{"state":"gone","epoch":1}',
    ])
      expect(parseLockRecord(enc.encode(s)), s).toBeNull();
    expect(parseLockRecord(enc.encode('{"state":"held","epoch":"1"}'))).toBeNull();
    expect(parseLockRecord(Uint8Array.of(0xff, 0xfe, 0x00))).toBeNull();
    // An invalid `released` is left out (it is display-only); an invalid ttlMs reads as 0.
    const r = parseLockRecord(enc.encode(JSON.stringify({ ...VALID_FREE, released: 'yes', ttlMs: -5 })));
    expect(r).toStrictEqual({ ...VALID_HELD, state: 'free', ttlMs: 0 });
    expect(r && 'released' in r).toBe(false);
  });

  it('never throws, never accepts a record violating LockRecord, and agrees with the old parser (seeded)', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      for (let i = 0; i < 3000; i++) {
        const bytes = toBytes(rng, JSON.stringify(mutate(rng, rng.chance(0.5) ? VALID_HELD : VALID_FREE)));
        const what = `seed ${seed} case ${i}: ${dec.decode(bytes)}`;
        let got: LockRecord | null = null;
        expect(() => (got = parseLockRecord(bytes)), what).not.toThrow();
        if (got !== null) expect(lockViolations(got), what).toEqual([]);
        const old = legacyParseLockRecord(bytes);
        // Where the old parser found no record, neither does the new one; where it returned a valid
        // record, the new one returns the same. (Where the old one let a violation through — a `released`
        // of any truthy value, an infinite number — the new one rejects or defaults it, checked above.)
        if (old === null) expect(got, what).toBeNull();
        else if (lockViolations(old).length === 0) expect(got, what).toStrictEqual(old);
      }
    }
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    const rng = new Rng(7);
    const odd = [NaN, Infinity, -Infinity, -1, undefined, 0n, Symbol('s'), () => 1, new Date(0)];
    for (let i = 0; i < 3000; i++) {
      const r = mutate(rng, rng.chance(0.5) ? VALID_HELD : VALID_FREE);
      r[rng.pick(Object.keys(r))] = rng.pick(odd);
      let out: ReturnType<typeof lockRecordSchema.safeParse> | undefined;
      expect(() => (out = lockRecordSchema.safeParse(r)), `case ${i}`).not.toThrow();
      if (out!.success) {
        const { released, ...rest } = out!.data;
        expect(lockViolations(released === undefined ? rest : out!.data), `case ${i}`).toEqual([]);
      }
    }
    expect(lockRecordSchema.safeParse({ ...VALID_HELD, epoch: NaN }).success).toBe(false);
    expect(lockRecordSchema.parse({ ...VALID_HELD, ttlMs: NaN }).ttlMs).toBe(0);
    expect(lockRecordSchema.parse({ ...VALID_HELD, ttlMs: -1 }).ttlMs).toBe(0);
  });
});
