// The ring's record parsers / schemas against seeded random corruptions of valid records: a parser never
// throws, never returns a record that violates its type, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { Rng } from '@gc/testkit';
import type { z } from 'zod';
import {
  parseConfigRecord,
  parseMapRecord,
  parseMemberRecord,
  parsePartitionRecord,
  parsePinsRecord,
  ringConfigRecordSchema,
  ringMapRecordSchema,
  ringMemberRecordSchema,
  ringPartitionRecordSchema,
  ringPinsRecordSchema,
} from './records.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- the hand-written parsers the schemas replaced (verbatim but for the types): the oracles ----

function parse(bytes: Uint8Array): Record<string, unknown> | null {
  if (!bytes || bytes.length === 0) return null;
  try {
    const v = JSON.parse(dec.decode(bytes)) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
const STATES: ReadonlySet<string> = new Set(['owning', 'owned', 'released']);
const legacy = {
  partition: (bytes: Uint8Array): unknown => {
    const r = parse(bytes);
    if (!r || typeof r.owner !== 'string' || typeof r.epoch !== 'number' || !STATES.has(String(r.state)))
      return null;
    return {
      v: 1,
      owner: r.owner,
      instance: typeof r.instance === 'string' ? r.instance : '',
      epoch: r.epoch,
      state: r.state,
      at: typeof r.at === 'number' ? r.at : 0,
      ...(typeof r.to === 'string' ? { to: r.to } : {}),
    };
  },
  member: (bytes: Uint8Array): unknown => {
    const r = parse(bytes);
    if (
      !r ||
      typeof r.nodeId !== 'string' ||
      typeof r.instance !== 'string' ||
      typeof r.weight !== 'number' ||
      !(r.weight > 0) ||
      typeof r.ttlMs !== 'number'
    )
      return null;
    return {
      v: 1,
      nodeId: r.nodeId,
      instance: r.instance,
      weight: r.weight,
      ttlMs: r.ttlMs,
      state: r.state === 'leaving' ? 'leaving' : 'active',
      startedAt: typeof r.startedAt === 'number' ? r.startedAt : 0,
      heartbeatAt: typeof r.heartbeatAt === 'number' ? r.heartbeatAt : 0,
    };
  },
  config: (bytes: Uint8Array): unknown => {
    const r = parse(bytes);
    if (!r || typeof r.partitions !== 'number' || !Number.isInteger(r.partitions)) return null;
    return {
      v: 1,
      partitions: r.partitions,
      createdAt: typeof r.createdAt === 'number' ? r.createdAt : 0,
      createdBy: typeof r.createdBy === 'string' ? r.createdBy : '?',
    };
  },
  map: (bytes: Uint8Array): unknown => {
    const r = parse(bytes);
    if (!r || typeof r.version !== 'number' || !Array.isArray(r.nodes) || !Array.isArray(r.assign))
      return null;
    return {
      v: 1,
      version: r.version,
      coordinator: typeof r.coordinator === 'string' ? r.coordinator : '?',
      epoch: typeof r.epoch === 'number' ? r.epoch : 0,
      nodes: (r.nodes as unknown[]).map(String),
      assign: (r.assign as unknown[]).map((x) => (typeof x === 'number' ? x : -1)),
      reason: typeof r.reason === 'string' ? r.reason : '',
      at: typeof r.at === 'number' ? r.at : 0,
    };
  },
  pins: (bytes: Uint8Array): unknown => {
    const r = parse(bytes);
    if (!r || !r.pins || typeof r.pins !== 'object') return null;
    const pins: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.pins as Record<string, unknown>))
      if (typeof v === 'string') pins[k] = v;
    return { v: 1, pins };
  },
};

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
  'owned',
  'leaving',
  [],
  ['a', 1],
  [0, 'n1', 2.5],
  {},
  { a: 1 },
  { '7': 'n2' },
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
  if (op === 'other') return enc.encode(rng.pick(['null', '[]', '42', '"owned"', 'true', '[{}]', '{}']));
  return b;
}

const v1: Check = (x) => x === 1;
const strings: Check = (x) => Array.isArray(x) && x.every(str);
const fields = {
  partition: {
    required: {
      v: v1,
      owner: str,
      instance: str,
      epoch: num,
      state: (x: unknown) => x === 'owning' || x === 'owned' || x === 'released',
      at: num,
    },
    optional: { to: str },
  },
  member: {
    required: {
      v: v1,
      nodeId: str,
      instance: str,
      weight: (x: unknown) => num(x) && (x as number) > 0,
      ttlMs: num,
      state: (x: unknown) => x === 'active' || x === 'leaving',
      startedAt: num,
      heartbeatAt: num,
    },
  },
  config: {
    // A count beyond 2^53 is no exact integer (the old parser let one through; the schema refuses it).
    required: { v: v1, partitions: (x: unknown) => Number.isSafeInteger(x), createdAt: num, createdBy: str },
  },
  map: {
    required: {
      v: v1,
      version: num,
      coordinator: str,
      epoch: num,
      nodes: strings,
      assign: (x: unknown) => Array.isArray(x) && x.every(num),
      reason: str,
      at: num,
    },
  },
  pins: { required: { v: v1, pins: (x: unknown) => isPlain(x) && Object.values(x).every(str) } },
};

const NOW = 1767225600123;
interface Case {
  parse: (bytes: Uint8Array) => unknown;
  legacy: (bytes: Uint8Array) => unknown;
  schema: z.ZodType;
  fields: { required: Record<string, Check>; optional?: Record<string, Check> };
  valid: Array<Record<string, unknown>>;
  /** Inputs the old parser read as a valid record and the new one rejects on purpose. */
  tightened?: (json: Record<string, unknown>) => boolean;
}
const cases: Record<string, Case> = {
  parsePartitionRecord: {
    parse: parsePartitionRecord,
    legacy: legacy.partition,
    schema: ringPartitionRecordSchema,
    fields: fields.partition,
    valid: [
      { v: 1, owner: 'n2', instance: 'Xc3aQ', epoch: 7, state: 'owned', at: NOW },
      { v: 1, owner: 'n2', instance: 'Xc3aQ', epoch: 8, state: 'released', at: NOW, to: 'n3' },
    ],
  },
  parseMemberRecord: {
    parse: parseMemberRecord,
    legacy: legacy.member,
    schema: ringMemberRecordSchema,
    fields: fields.member,
    valid: [
      {
        v: 1,
        nodeId: 'n2',
        instance: 'Xc3aQ',
        weight: 1,
        ttlMs: 3000,
        state: 'active',
        startedAt: NOW,
        heartbeatAt: NOW,
      },
      {
        v: 1,
        nodeId: 'n3',
        instance: 'Yd4',
        weight: 2.5,
        ttlMs: 3000,
        state: 'leaving',
        startedAt: NOW,
        heartbeatAt: NOW,
      },
    ],
  },
  parseConfigRecord: {
    parse: parseConfigRecord,
    legacy: legacy.config,
    schema: ringConfigRecordSchema,
    fields: fields.config,
    valid: [{ v: 1, partitions: 64, createdAt: NOW, createdBy: 'n1' }],
  },
  parseMapRecord: {
    parse: parseMapRecord,
    legacy: legacy.map,
    schema: ringMapRecordSchema,
    fields: fields.map,
    valid: [
      {
        v: 1,
        version: 12,
        coordinator: 'n1',
        epoch: 3,
        nodes: ['n1', 'n2', 'n3'],
        assign: [0, 1, 2, -1, 0, 1],
        reason: 'member-joined',
        at: NOW,
      },
    ],
  },
  parsePinsRecord: {
    parse: parsePinsRecord,
    legacy: legacy.pins,
    schema: ringPinsRecordSchema,
    fields: fields.pins,
    valid: [{ v: 1, pins: { '3': 'n1', '9': 'n2' } }],
    // Pins that are an array (the old parser read its indexes as partitions; gc never writes one).
    tightened: (j) => Array.isArray(j.pins),
  },
};

const check = (c: Case, v: unknown) => violations(v, c.fields.required, c.fields.optional);

describe('ring record parsers', () => {
  it('read valid records as before, and records of older versions with optional fields missing', () => {
    for (const [name, c] of Object.entries(cases)) {
      for (const r of c.valid) expect(c.parse(enc.encode(JSON.stringify(r))), name).toStrictEqual(r);
    }
    expect(parsePartitionRecord(enc.encode('{"owner":"n1","epoch":2,"state":"owning"}'))).toStrictEqual({
      v: 1,
      owner: 'n1',
      instance: '',
      epoch: 2,
      state: 'owning',
      at: 0,
    });
    expect(
      parseMemberRecord(enc.encode('{"nodeId":"n1","instance":"i","weight":1,"ttlMs":9}')),
    ).toStrictEqual({
      v: 1,
      nodeId: 'n1',
      instance: 'i',
      weight: 1,
      ttlMs: 9,
      state: 'active',
      startedAt: 0,
      heartbeatAt: 0,
    });
    expect(parseConfigRecord(enc.encode('{"partitions":16}'))).toStrictEqual({
      v: 1,
      partitions: 16,
      createdAt: 0,
      createdBy: '?',
    });
    expect(parseMapRecord(enc.encode('{"version":1,"nodes":["a",2],"assign":[0,"x",null]}'))).toStrictEqual({
      v: 1,
      version: 1,
      coordinator: '?',
      epoch: 0,
      nodes: ['a', '2'],
      assign: [0, -1, -1],
      reason: '',
      at: 0,
    });
    expect(parsePinsRecord(enc.encode('{"pins":{"1":"a","2":3}}'))).toStrictEqual({
      v: 1,
      pins: { '1': 'a' },
    });
    // Unknown fields (a newer node's) are accepted and dropped; a newer schema version is read as 1.
    const newer = { ...cases.parsePartitionRecord!.valid[0], v: 2, lease: { kind: 'x' }, region: 'eu' };
    expect(parsePartitionRecord(enc.encode(JSON.stringify(newer)))).toStrictEqual(
      cases.parsePartitionRecord!.valid[0],
    );
  });

  it('reject what is not a record of theirs and never throw', () => {
    for (const [name, c] of Object.entries(cases)) {
      for (const s of ['', 'not json', 'null', '[]', '42', '"x"', '{}'])
        expect(c.parse(enc.encode(s)), `${name} ${s}`).toBeNull();
      expect(c.parse(Uint8Array.of(0xff, 0xfe, 0x00)), name).toBeNull();
    }
    expect(parseMemberRecord(enc.encode('{"nodeId":"n1","instance":"i","weight":0,"ttlMs":9}'))).toBeNull();
    expect(parseConfigRecord(enc.encode('{"partitions":1.5}'))).toBeNull();
    expect(parsePartitionRecord(enc.encode('{"owner":"n1","epoch":2,"state":["owned"]}'))).toBeNull();
    const r = parsePartitionRecord(enc.encode('{"owner":"n1","epoch":2,"state":"released","to":5}'));
    expect(r && 'to' in r).toBe(false);
  });

  for (const [name, c] of Object.entries(cases)) {
    it(`${name} never throws, never accepts a violation, and agrees with the old parser (seeded)`, () => {
      for (const seed of [1, 2, 3]) {
        const rng = new Rng(seed);
        for (let i = 0; i < 1500; i++) {
          const json = mutate(rng, rng.pick(c.valid));
          const bytes = toBytes(rng, JSON.stringify(json));
          const what = `seed ${seed} case ${i}: ${dec.decode(bytes)}`;
          let got: unknown = null;
          expect(() => (got = c.parse(bytes)), what).not.toThrow();
          if (got !== null) expect(check(c, got), what).toEqual([]);
          const old = c.legacy(bytes);
          // Where the old parser found no record, neither does the new one; where it returned a valid
          // record, the new one returns the same (but for the documented tightenings). Where the old one
          // let a violation through (an infinite number, a state that is an array), the new one rejects or
          // defaults it, checked above.
          if (old === null) expect(got, what).toBeNull();
          else if (check(c, old).length === 0) {
            const input = parse(bytes);
            if (input && c.tightened?.(input)) expect(got, what).toBeNull();
            else expect(got, what).toStrictEqual(old);
          }
        }
      }
    });
  }

  it('the schemas never throw and never output a violation, on values JSON cannot carry too (seeded)', () => {
    const rng = new Rng(7);
    const odd = [NaN, Infinity, -Infinity, -1, undefined, 0n, Symbol('s'), () => 1, new Date(0)];
    for (const [name, c] of Object.entries(cases)) {
      for (let i = 0; i < 1000; i++) {
        const r = mutate(rng, rng.pick(c.valid));
        r[rng.pick(Object.keys(r))] = rng.pick(odd);
        let out: ReturnType<z.ZodType['safeParse']> | undefined;
        expect(() => (out = c.schema.safeParse(r)), `${name} case ${i}`).not.toThrow();
        if (out!.success) {
          // `to` parses to undefined when mistyped (parsePartitionRecord then leaves the key out).
          const data = { ...(out!.data as Record<string, unknown>) };
          if (data.to === undefined) delete data.to;
          expect(check(c, data), `${name} case ${i}`).toEqual([]);
        }
      }
    }
    const member = cases.parseMemberRecord!.valid[0];
    expect(ringMemberRecordSchema.safeParse({ ...member, weight: NaN }).success).toBe(false);
    expect(ringMemberRecordSchema.safeParse({ ...member, weight: -1 }).success).toBe(false);
    expect(ringMemberRecordSchema.safeParse({ ...member, ttlMs: NaN }).success).toBe(false);
    expect(ringMapRecordSchema.parse({ ...cases.parseMapRecord!.valid[0], assign: [1, NaN] }).assign).toEqual(
      [1, -1],
    );
  });
});
