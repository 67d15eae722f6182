// parseAuditRecord / auditRecordSchema against seeded random corruptions of valid audit records: the parser
// never throws, never returns a record that violates AuditRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { Rng } from '@gc/testkit';
import { parseAuditRecord } from './audit.js';
import { auditRecordSchema } from './record.js';
import { AuditSeverity, type AuditRecord, type AuditSeverityValue } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const SEVERITIES = new Set<string>(Object.values(AuditSeverity));

/** The hand-written parser the schema replaced (verbatim): the oracle. */
function legacyParseAuditRecord(data: Uint8Array, seq?: number): AuditRecord | null {
  try {
    const r = JSON.parse(dec.decode(data)) as Partial<AuditRecord>;
    if (typeof r.id !== 'string' || typeof r.type !== 'string' || typeof r.time !== 'string') return null;
    return {
      v: 1,
      id: r.id,
      time: r.time,
      node: typeof r.node === 'string' ? r.node : '',
      type: r.type,
      ...(typeof r.app === 'string' ? { app: r.app } : {}),
      ...(typeof r.epoch === 'number' ? { epoch: r.epoch } : {}),
      severity: SEVERITIES.has(r.severity as string) ? (r.severity as AuditSeverityValue) : 'info',
      data: r.data ?? {},
      ...(seq !== undefined ? { seq } : {}),
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
  'warn',
  'fatal',
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
  if (op === 'other')
    return enc.encode(rng.pick(['null', '[]', '42', '"lock.forced"', 'true', '[{}]', '{}']));
  return b;
}

const auditFields = {
  v: (x: unknown) => x === 1,
  id: str,
  time: str,
  node: str,
  type: str,
  severity: (x: unknown) => SEVERITIES.has(x as string),
  data: (x: unknown) => x !== undefined && x !== null,
};
const auditViolations = (v: unknown) => violations(v, auditFields, { app: str, epoch: num, seq: num });

const VALID = {
  v: 1,
  id: 'Zb9XQ2m0Ltq4',
  time: '2026-01-01T00:00:00.123Z',
  node: 'node-a',
  type: 'lock.forced',
  app: 'orders',
  epoch: 42,
  severity: 'warn',
  data: { lock: 'job', reason: 'wedged' },
};
const MINIMAL = {
  v: 1,
  id: 'Yc8',
  time: '2026-01-01T00:00:01.000Z',
  node: 'node-b',
  type: 'x.y',
  severity: 'info',
  data: 7,
};

describe('parseAuditRecord', () => {
  it('reads valid records, and records of older versions with fields missing, as before', () => {
    expect(parseAuditRecord(enc.encode(JSON.stringify(VALID)))).toStrictEqual(VALID);
    expect(parseAuditRecord(enc.encode(JSON.stringify(VALID)), 17)).toStrictEqual({ ...VALID, seq: 17 });
    expect(parseAuditRecord(enc.encode(JSON.stringify(MINIMAL)), 3)).toStrictEqual({ ...MINIMAL, seq: 3 });
    expect(parseAuditRecord(enc.encode('{"id":"a","type":"t","time":"now"}'))).toStrictEqual({
      v: 1,
      id: 'a',
      time: 'now',
      node: '',
      type: 't',
      severity: 'info',
      data: {},
    });
    // Unknown fields (a newer node's) are accepted and dropped; a stored `seq` is not the stream's.
    const newer = { ...VALID, v: 2, trace: 'abc', seq: 99 };
    expect(parseAuditRecord(enc.encode(JSON.stringify(newer)))).toStrictEqual(VALID);
    expect(parseAuditRecord(enc.encode(JSON.stringify(newer)), 5)).toStrictEqual({ ...VALID, seq: 5 });
  });

  it('rejects what is not an audit record, defaults what it can, and never throws', () => {
    for (const s of [
      '',
      'not json',
      'null',
      '[]',
      '42',
      '{}',
      '{"id":"a","type":"t"}',
      '{"id":1,"type":"t","time":"x"}',
    ])
      expect(parseAuditRecord(enc.encode(s)), s).toBeNull();
    expect(parseAuditRecord(Uint8Array.of(0xff, 0xfe, 0x00))).toBeNull();
    const odd = { ...VALID, app: 5, epoch: 'x', severity: 'fatal', data: null };
    const r = parseAuditRecord(enc.encode(JSON.stringify(odd)));
    const { app: _app, epoch: _epoch, ...rest } = VALID;
    expect(r).toStrictEqual({ ...rest, severity: 'info', data: {} });
    expect(r && ('app' in r || 'epoch' in r)).toBe(false);
  });

  it('never throws, never accepts a record violating AuditRecord, and agrees with the old parser (seeded)', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      for (let i = 0; i < 3000; i++) {
        const bytes = toBytes(rng, JSON.stringify(mutate(rng, rng.chance(0.7) ? VALID : MINIMAL)));
        const seq = rng.chance(0.5) ? rng.int(1, 1000) : undefined;
        const what = `seed ${seed} case ${i} seq ${seq}: ${dec.decode(bytes)}`;
        let got: AuditRecord | null = null;
        expect(() => (got = parseAuditRecord(bytes, seq)), what).not.toThrow();
        if (got !== null) expect(auditViolations(got), what).toEqual([]);
        const old = legacyParseAuditRecord(bytes, seq);
        // Where the old parser found no record, neither does the new one; where it returned a valid
        // record, the new one returns the same. (Where the old one let an infinite epoch through, the new
        // one leaves it out, checked above.)
        if (old === null) expect(got, what).toBeNull();
        else if (auditViolations(old).length === 0) expect(got, what).toStrictEqual(old);
      }
    }
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    const rng = new Rng(7);
    const odd = [NaN, Infinity, -Infinity, -1, undefined, 0n, Symbol('s'), () => 1, new Date(0)];
    for (let i = 0; i < 3000; i++) {
      const r = mutate(rng, VALID);
      r[rng.pick(Object.keys(r))] = rng.pick(odd);
      let out: ReturnType<typeof auditRecordSchema.safeParse> | undefined;
      expect(() => (out = auditRecordSchema.safeParse(r)), `case ${i}`).not.toThrow();
      if (out!.success) {
        // `app` and `epoch` parse to undefined when mistyped (parseAuditRecord then leaves the keys out).
        const data: Record<string, unknown> = { ...out!.data };
        for (const k of ['app', 'epoch']) if (data[k] === undefined) delete data[k];
        expect(violations(data, auditFields, { app: str, epoch: num }), `case ${i}`).toEqual([]);
      }
    }
    expect(auditRecordSchema.parse({ ...VALID, epoch: NaN }).epoch).toBeUndefined();
    expect(auditRecordSchema.parse({ ...VALID, epoch: -Infinity }).epoch).toBeUndefined();
  });
});
