// parseAuditRecord / auditRecordSchema against seeded random corruptions of valid audit records: the parser
// never throws, never returns a record that violates AuditRecord, and returns what the hand-written parser it
// replaced returned for every input on which that one returned a valid record.
import { describe, expect, it } from 'vitest';
import { checkNonRecords, is, RecordFuzz, recordViolations } from '@gc/testkit';
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

// ---- what the type allows, checked by hand (independent of zod), and the seeded corruptions ----

const auditFields = {
  v: (x: unknown) => x === 1,
  id: is.string,
  time: is.string,
  node: is.string,
  type: is.string,
  severity: (x: unknown) => SEVERITIES.has(x as string),
  data: (x: unknown) => x !== undefined && x !== null,
};
const auditViolations = (v: unknown) =>
  recordViolations(v, auditFields, { app: is.string, epoch: is.number, seq: is.number });

const fuzz = new RecordFuzz({ bareString: 'lock.forced', strings: ['warn', 'fatal'] });

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
    checkNonRecords(parseAuditRecord, ['{"id":"a","type":"t"}', '{"id":1,"type":"t","time":"x"}']);
    const odd = { ...VALID, app: 5, epoch: 'x', severity: 'fatal', data: null };
    const r = parseAuditRecord(enc.encode(JSON.stringify(odd)));
    const { app: _app, epoch: _epoch, ...rest } = VALID;
    expect(r).toStrictEqual({ ...rest, severity: 'info', data: {} });
    expect(r && ('app' in r || 'epoch' in r)).toBe(false);
  });

  it('never throws, never accepts a record violating AuditRecord, and agrees with the old parser (seeded)', () => {
    fuzz.checkParser({
      valid: (rng) => (rng.chance(0.7) ? VALID : MINIMAL),
      arg: (rng) => (rng.chance(0.5) ? rng.int(1, 1000) : undefined),
      parse: parseAuditRecord,
      violations: auditViolations,
      // Where the old one let an infinite epoch through, the new one leaves it out.
      reference: legacyParseAuditRecord,
    });
  });

  it('the schema never throws and never outputs a violation, on values JSON cannot carry too (seeded)', () => {
    fuzz.checkSchema({
      schema: auditRecordSchema,
      valid: () => VALID,
      violations: (out) => {
        // `app` and `epoch` parse to undefined when mistyped (parseAuditRecord then leaves the keys out).
        const data: Record<string, unknown> = { ...out };
        for (const k of ['app', 'epoch']) if (data[k] === undefined) delete data[k];
        return recordViolations(data, auditFields, { app: is.string, epoch: is.number });
      },
    });
    expect(auditRecordSchema.parse({ ...VALID, epoch: NaN }).epoch).toBeUndefined();
    expect(auditRecordSchema.parse({ ...VALID, epoch: -Infinity }).epoch).toBeUndefined();
  });
});
