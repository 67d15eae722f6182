// The ring's record parsers / schemas against seeded random corruptions of valid records: a parser never
// throws, never returns a record that violates its type, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import {
  checkNonRecords,
  is,
  RecordFuzz,
  recordViolations,
  Rng,
  type FieldCheck as Check,
} from '@gc/testkit';
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

// ---- what the type allows, checked by hand (independent of zod), and the seeded corruptions ----

const fuzz = new RecordFuzz({
  bareString: 'owned',
  strings: ['owned', 'leaving'],
  arrays: [[0, 'n1', 2.5]],
  objects: [{ '7': 'n2' }],
});

const v1: Check = (x) => x === 1;
const strings: Check = (x) => Array.isArray(x) && x.every(is.string);
const fields = {
  partition: {
    required: {
      v: v1,
      owner: is.string,
      instance: is.string,
      epoch: is.number,
      state: (x: unknown) => x === 'owning' || x === 'owned' || x === 'released',
      at: is.number,
    },
    optional: { to: is.string },
  },
  member: {
    required: {
      v: v1,
      nodeId: is.string,
      instance: is.string,
      weight: (x: unknown) => is.number(x) && x > 0,
      ttlMs: is.number,
      state: (x: unknown) => x === 'active' || x === 'leaving',
      startedAt: is.number,
      heartbeatAt: is.number,
    },
  },
  config: {
    // A count beyond 2^53 is no exact integer (the old parser let one through; the schema refuses it).
    required: {
      v: v1,
      partitions: (x: unknown) => Number.isSafeInteger(x),
      createdAt: is.number,
      createdBy: is.string,
    },
  },
  map: {
    required: {
      v: v1,
      version: is.number,
      coordinator: is.string,
      epoch: is.number,
      nodes: strings,
      assign: (x: unknown) => Array.isArray(x) && x.every(is.number),
      reason: is.string,
      at: is.number,
    },
  },
  pins: { required: { v: v1, pins: (x: unknown) => is.object(x) && Object.values(x).every(is.string) } },
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

const check = (c: Case, v: unknown) => recordViolations(v, c.fields.required, c.fields.optional);

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
    for (const [name, c] of Object.entries(cases)) checkNonRecords(c.parse, ['"x"'], name);
    expect(parseMemberRecord(enc.encode('{"nodeId":"n1","instance":"i","weight":0,"ttlMs":9}'))).toBeNull();
    expect(parseConfigRecord(enc.encode('{"partitions":1.5}'))).toBeNull();
    expect(parsePartitionRecord(enc.encode('{"owner":"n1","epoch":2,"state":["owned"]}'))).toBeNull();
    const r = parsePartitionRecord(enc.encode('{"owner":"n1","epoch":2,"state":"released","to":5}'));
    expect(r && 'to' in r).toBe(false);
  });

  for (const [name, c] of Object.entries(cases)) {
    it(`${name} never throws, never accepts a violation, and agrees with the old parser (seeded)`, () => {
      fuzz.checkParser({
        valid: (rng) => rng.pick(c.valid),
        parse: c.parse,
        violations: (v) => check(c, v),
        // Where the old one let a violation through (an infinite number, a state that is an array), the
        // new one rejects or defaults it; the documented tightenings it rejects.
        reference: c.legacy,
        tightened: (bytes) => {
          const input = parse(bytes);
          return input !== null && c.tightened?.(input) === true;
        },
        cases: 1500,
        label: name,
      });
    });
  }

  it('the schemas never throw and never output a violation, on values JSON cannot carry too (seeded)', () => {
    const rng = new Rng(7); // one sequence over the five schemas
    for (const [name, c] of Object.entries(cases)) {
      fuzz.checkSchema({
        schema: c.schema,
        valid: (r) => r.pick(c.valid),
        violations: (out) => {
          // `to` parses to undefined when mistyped (parsePartitionRecord then leaves the key out).
          const data = { ...(out as Record<string, unknown>) };
          if (data.to === undefined) delete data.to;
          return check(c, data);
        },
        cases: 1000,
        rng,
        label: name,
      });
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
