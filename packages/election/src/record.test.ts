// parseRecord / leaseRecordSchema against seeded random corruptions of valid lease records: the parser never
// throws, never returns a record that violates LeaseRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { checkNonRecords, is, RecordFuzz, recordViolations } from '@gc/testkit';
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

// ---- what the type allows, checked by hand (independent of zod), and the seeded corruptions ----

const leaseViolations = (v: unknown) =>
  recordViolations(v, {
    holder: is.string,
    instance: is.string,
    epoch: is.number,
    ttlMs: is.number,
    live: is.boolean,
    priority: is.number,
    grantedAt: is.number,
  });

const fuzz = new RecordFuzz({ bareString: 'node-a', strings: ['node-b', 'true'] });

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
    checkNonRecords(parseRecord, ['{"holder":"n1","epoch":1}', '{"holder":1,"epoch":1,"ttlMs":1}']);
    expect(parseRecord(enc.encode(JSON.stringify({ ...VALID, live: 'true', priority: '9' })))).toStrictEqual({
      ...VALID,
      live: false,
      priority: 0,
    });
  });

  it('never throws, never accepts a record violating LeaseRecord, and agrees with the old parser (seeded)', () => {
    fuzz.checkParser({
      valid: () => VALID,
      parse: parseRecord,
      violations: leaseViolations,
      // Where the old one let an infinite number through, the new one rejects or defaults it.
      reference: legacyParseRecord,
    });
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    fuzz.checkSchema({ schema: leaseRecordSchema, valid: () => VALID, violations: leaseViolations });
    expect(leaseRecordSchema.safeParse({ ...VALID, epoch: NaN }).success).toBe(false);
    expect(leaseRecordSchema.safeParse({ ...VALID, ttlMs: Infinity }).success).toBe(false);
    expect(leaseRecordSchema.parse({ ...VALID, priority: NaN }).priority).toBe(0);
  });
});
