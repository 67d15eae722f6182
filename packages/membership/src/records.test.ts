// parseMemberRecord / memberRecordSchema against seeded random corruptions of valid records: the parser never
// throws, never returns a record that violates MemberRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { checkNonRecords, is, RecordFuzz, recordViolations } from '@gc/testkit';
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

// ---- what the type allows, checked by hand (independent of zod), and the seeded corruptions ----

const positive = (x: unknown) => is.number(x) && x > 0;
const memberFields = {
  v: (x: unknown) => x === 1,
  nodeId: is.string,
  instance: is.string,
  labels: (x: unknown) => is.object(x) && Object.values(x).every(is.string),
  apps: (x: unknown) => Array.isArray(x) && x.every(is.string),
  version: is.string,
  startedAt: is.number,
  heartbeatAt: is.number,
  heartbeatMs: is.number,
};
const memberViolations = (v: unknown) => recordViolations(v, { ...memberFields, failAfterMs: is.number });

const fuzz = new RecordFuzz({ bareString: 'node-a', strings: ['orders'], objects: [{ zone: 'b' }] });

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
    checkNonRecords(parseMemberRecord, ['{"nodeId":"n1"}', '{"nodeId":1,"heartbeatMs":1}']);
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
    fuzz.checkParser({
      valid: () => VALID,
      parse: parseMemberRecord,
      violations: memberViolations,
      // Where the old one let a violation through — labels that are an array or hold non-strings, an
      // infinite number — the new one rejects or cleans it.
      reference: legacyParseMemberRecord,
    });
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    fuzz.checkSchema({
      schema: memberRecordSchema,
      valid: () => VALID,
      // `failAfterMs` is left undefined when it is not a positive number (parseMemberRecord then defaults it).
      violations: (data) =>
        recordViolations(data, memberFields, { failAfterMs: (x) => x === undefined || positive(x) }),
    });
    expect(memberRecordSchema.safeParse({ ...VALID, heartbeatMs: NaN }).success).toBe(false);
    expect(memberRecordSchema.parse({ ...VALID, failAfterMs: NaN }).failAfterMs).toBeUndefined();
    expect(memberRecordSchema.parse({ ...VALID, failAfterMs: -1 }).failAfterMs).toBeUndefined();
  });
});
