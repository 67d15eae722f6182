// parseLockRecord / lockRecordSchema against seeded random corruptions of valid records: the parser never
// throws, never returns a record that violates LockRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { checkNonRecords, is, RecordFuzz, recordViolations } from '@gc/testkit';
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

// ---- what the type allows, checked by hand (independent of zod), and the seeded corruptions ----

const releaseOk = (v: unknown) =>
  recordViolations(v, { by: is.string, reason: is.string, at: is.number, forced: is.boolean }).length === 0;
const lockViolations = (v: unknown) =>
  recordViolations(
    v,
    {
      v: (x) => x === 1,
      state: (x) => x === 'held' || x === 'free',
      epoch: is.number,
      owner: is.string,
      instance: is.string,
      token: is.string,
      ttlMs: (x) => is.number(x) && x >= 0,
      acquiredAt: is.number,
      refreshedAt: is.number,
    },
    { released: releaseOk },
  );

const fuzz = new RecordFuzz({
  bareString: 'held',
  strings: ['held', 'free'],
  objects: [{ by: 'op', reason: 'r', at: 1, forced: 'yes' }],
});

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
    checkNonRecords(parseLockRecord, [
      '{"state":"held"}',
      '{"state":"gone","epoch":1}',
      '{"state":"held","epoch":"1"}',
    ]);
    // An invalid `released` is left out (it is display-only); an invalid ttlMs reads as 0.
    const r = parseLockRecord(enc.encode(JSON.stringify({ ...VALID_FREE, released: 'yes', ttlMs: -5 })));
    expect(r).toStrictEqual({ ...VALID_HELD, state: 'free', ttlMs: 0 });
    expect(r && 'released' in r).toBe(false);
  });

  it('never throws, never accepts a record violating LockRecord, and agrees with the old parser (seeded)', () => {
    fuzz.checkParser({
      valid: (rng) => (rng.chance(0.5) ? VALID_HELD : VALID_FREE),
      parse: parseLockRecord,
      violations: lockViolations,
      // Where the old one let a violation through — a `released` of any truthy value, an infinite number —
      // the new one rejects or defaults it.
      reference: legacyParseLockRecord,
    });
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    fuzz.checkSchema({
      schema: lockRecordSchema,
      valid: (rng) => (rng.chance(0.5) ? VALID_HELD : VALID_FREE),
      violations: (data) => {
        const { released, ...rest } = data;
        return lockViolations(released === undefined ? rest : data);
      },
    });
    expect(lockRecordSchema.safeParse({ ...VALID_HELD, epoch: NaN }).success).toBe(false);
    expect(lockRecordSchema.parse({ ...VALID_HELD, ttlMs: NaN }).ttlMs).toBe(0);
    expect(lockRecordSchema.parse({ ...VALID_HELD, ttlMs: -1 }).ttlMs).toBe(0);
  });
});
