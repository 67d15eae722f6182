// parseMemberRecord / memberRecordSchema against seeded random corruptions of valid records: the parser never
// throws, never returns a record that violates MemberRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { Rng } from '@gc/testkit';
import { memberRecordSchema, parseMemberRecord } from './records.js';
import type { MemberRecord } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The hand-written parser the schema replaced (verbatim): the oracle. */
function legacyParseMemberRecord(bytes: Uint8Array): MemberRecord | null {
  if (bytes.length === 0) return null;
  try {
    const r = JSON.parse(dec.decode(bytes)) as Partial<MemberRecord>;
    if (typeof r.nodeId !== 'string' || typeof r.heartbeatMs !== 'number') return null;
    return {
      v: 1,
      nodeId: r.nodeId,
      instance: typeof r.instance === 'string' ? r.instance : '',
      labels: r.labels && typeof r.labels === 'object' ? r.labels : {},
      apps: Array.isArray(r.apps) ? r.apps.filter((a): a is string => typeof a === 'string') : [],
      version: typeof r.version === 'string' ? r.version : '',
      startedAt: typeof r.startedAt === 'number' ? r.startedAt : 0,
      heartbeatAt: typeof r.heartbeatAt === 'number' ? r.heartbeatAt : 0,
      heartbeatMs: r.heartbeatMs,
      failAfterMs: typeof r.failAfterMs === 'number' && r.failAfterMs > 0 ? r.failAfterMs : 3 * r.heartbeatMs,
    };
  } catch {
    return null;
  }
}

// ---- what the type allows, checked by hand (independent of zod) ----

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
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
  'orders',
  [],
  ['a', 1],
  {},
  { a: 1 },
  { zone: 'b' },
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

const positive: Check = (x) => num(x) && (x as number) > 0;
const memberFields = {
  v: (x: unknown) => x === 1,
  nodeId: str,
  instance: str,
  labels: (x: unknown) => isPlain(x) && Object.values(x).every(str),
  apps: (x: unknown) => Array.isArray(x) && x.every(str),
  version: str,
  startedAt: num,
  heartbeatAt: num,
  heartbeatMs: num,
};
const memberViolations = (v: unknown) => violations(v, { ...memberFields, failAfterMs: num });

const VALID = {
  v: 1,
  nodeId: 'node-a',
  instance: 'Xc3aQ',
  labels: { zone: 'a', rack: 'r1' },
  apps: ['orders', 'billing'],
  version: '1.2.3',
  startedAt: 1767225600000,
  heartbeatAt: 1767225601000,
  heartbeatMs: 1000,
  failAfterMs: 3000,
};

describe('parseMemberRecord', () => {
  it('reads valid records, and records of older versions with fields missing, as before', () => {
    expect(parseMemberRecord(enc.encode(JSON.stringify(VALID)))).toStrictEqual(VALID);
    expect(parseMemberRecord(enc.encode('{"nodeId":"n1","heartbeatMs":500}'))).toStrictEqual({
      v: 1,
      nodeId: 'n1',
      instance: '',
      labels: {},
      apps: [],
      version: '',
      startedAt: 0,
      heartbeatAt: 0,
      heartbeatMs: 500,
      failAfterMs: 1500,
    });
    // Unknown fields (a newer node's) are accepted and dropped; a newer schema version is read as 1.
    const newer = { ...VALID, v: 2, zone: 'eu', caps: { gpu: 1 } };
    expect(parseMemberRecord(enc.encode(JSON.stringify(newer)))).toStrictEqual(VALID);
  });

  it('rejects what is not a member record, keeps only valid labels and apps, and never throws', () => {
    for (const s of [
      '',
      'not json',
      'null',
      '[]',
      '42',
      '{}',
      '{"nodeId":"n1"}',
      '{"nodeId":1,"heartbeatMs":1}',
    ])
      expect(parseMemberRecord(enc.encode(s)), s).toBeNull();
    expect(parseMemberRecord(Uint8Array.of(0xff, 0xfe, 0x00))).toBeNull();
    const odd = { ...VALID, labels: { zone: 'a', n: 1, o: {} }, apps: ['orders', 2, null], failAfterMs: -1 };
    expect(parseMemberRecord(enc.encode(JSON.stringify(odd)))).toStrictEqual({
      ...VALID,
      labels: { zone: 'a' },
      apps: ['orders'],
      failAfterMs: 3000,
    });
    expect(parseMemberRecord(enc.encode(JSON.stringify({ ...VALID, labels: ['a'] })))?.labels).toStrictEqual(
      {},
    );
  });

  it('never throws, never accepts a record violating MemberRecord, and agrees with the old parser (seeded)', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      for (let i = 0; i < 3000; i++) {
        const bytes = toBytes(rng, JSON.stringify(mutate(rng, VALID)));
        const what = `seed ${seed} case ${i}: ${dec.decode(bytes)}`;
        let got: MemberRecord | null = null;
        expect(() => (got = parseMemberRecord(bytes)), what).not.toThrow();
        if (got !== null) expect(memberViolations(got), what).toEqual([]);
        const old = legacyParseMemberRecord(bytes);
        // Where the old parser found no record, neither does the new one; where it returned a valid
        // record, the new one returns the same. (Where the old one let a violation through — labels that
        // are an array or hold non-strings, an infinite number — the new one rejects or cleans it.)
        if (old === null) expect(got, what).toBeNull();
        else if (memberViolations(old).length === 0) expect(got, what).toStrictEqual(old);
      }
    }
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    const rng = new Rng(7);
    const odd = [NaN, Infinity, -Infinity, -1, undefined, 0n, Symbol('s'), () => 1, new Date(0)];
    for (let i = 0; i < 3000; i++) {
      const r = mutate(rng, VALID);
      r[rng.pick(Object.keys(r))] = rng.pick(odd);
      let out: ReturnType<typeof memberRecordSchema.safeParse> | undefined;
      expect(() => (out = memberRecordSchema.safeParse(r)), `case ${i}`).not.toThrow();
      if (out!.success) {
        const { failAfterMs, ...rest } = out!.data;
        expect(violations(rest, memberFields), `case ${i}`).toEqual([]);
        expect(failAfterMs === undefined || positive(failAfterMs), `case ${i}`).toBe(true);
      }
    }
    expect(memberRecordSchema.safeParse({ ...VALID, heartbeatMs: NaN }).success).toBe(false);
    expect(memberRecordSchema.parse({ ...VALID, failAfterMs: NaN }).failAfterMs).toBeUndefined();
    expect(memberRecordSchema.parse({ ...VALID, failAfterMs: -1 }).failAfterMs).toBeUndefined();
  });
});
