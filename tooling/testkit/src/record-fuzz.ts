// Seeded corruption of the JSON records gc reads off the wire, to check their parsers: a valid record is
// changed field by field (wrong types, dropped and extra fields, changes inside arrays and objects), then
// its bytes are sometimes damaged (a number out of range, cut short, a byte changed, garbage, another JSON
// value). A parser must never throw, every record it accepts must pass a hand-written type check, and it
// must agree with a reference parser (the hand-written one a schema replaced) wherever that one returned a
// valid record. Assertions use node:assert, so the helper runs under any test runner.
import { deepStrictEqual, fail, strictEqual } from 'node:assert/strict';
import { Rng } from './rng.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Whether one field's value is allowed (see {@link recordViolations}). */
export type FieldCheck = (v: unknown) => boolean;

/**
 * Checks of one field's value, for {@link recordViolations}: `is.number` is a finite number (what a JSON
 * number is: `1e999` reads as Infinity and is none), `is.object` an object that is neither null nor an array.
 *
 * @example
 * const ttlOk: FieldCheck = (x) => is.number(x) && x >= 0;
 */
export const is = {
  string: (v: unknown): v is string => typeof v === 'string',
  number: (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v),
  boolean: (v: unknown): v is boolean => typeof v === 'boolean',
  object: (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v),
} as const;

/**
 * Every way `v` is not an object with exactly the `required` (and possibly the `optional`) fields, each
 * passing its check: `[]` when it is one. A type check written by hand, independent of the schema under test.
 *
 * @example
 * recordViolations({ holder: 1 }, { holder: is.string, epoch: is.number });
 * // ['holder: 1', 'epoch: undefined']
 */
export function recordViolations(
  v: unknown,
  required: Readonly<Record<string, FieldCheck>>,
  optional: Readonly<Record<string, FieldCheck>> = {},
): string[] {
  if (!is.object(v)) return [`not an object: ${JSON.stringify(v)}`];
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

/** What no record parser reads as a record: empty, not JSON, JSON that is no object or an empty one. */
const NON_RECORDS: readonly string[] = ['', 'not json', 'null', '[]', '42', '{}'];

/**
 * Checks that `parse` returns null, without throwing, for what is no record of any kind (empty bytes, text
 * that is not JSON, `null`, `[]`, `42`, `{}`, invalid UTF-8) and for each of `more` (JSON close to a record
 * of its kind). Throws an AssertionError naming the input at the first failure.
 *
 * @example
 * checkNonRecords(parseRecord, ['{"holder":"n1","epoch":1}']);
 */
export function checkNonRecords(
  parse: (bytes: Uint8Array) => unknown,
  more: readonly string[] = [],
  label?: string,
): void {
  const prefix = label ? `${label} ` : '';
  for (const s of [...NON_RECORDS, ...more]) strictEqual(parse(enc.encode(s)), null, `${prefix}${s}`);
  strictEqual(parse(Uint8Array.of(0xff, 0xfe, 0x00)), null, `${prefix}invalid UTF-8`);
}

/** What a {@link RecordFuzz} adds to its generic wrong values, for one kind of record. */
export interface RecordFuzzOptions {
  /** JSON string sent whole instead of a record (e.g. a node id or a state name). */
  bareString: string;
  /** Strings that mean something in this record (state names, ids), as wrong values. */
  strings?: readonly string[];
  /** Arrays, as wrong values (e.g. one almost like a field's). */
  arrays?: readonly unknown[][];
  /** Objects, as wrong values (e.g. a nested field with one member mistyped). */
  objects?: readonly Record<string, unknown>[];
}

/** A schema as {@link RecordFuzz.checkSchema} uses it (a zod schema is one). */
export interface SafeParser<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false };
}

/** What {@link RecordFuzz.checkParser} checks. `A` is an extra argument drawn for each case (none by default). */
export interface ParserFuzz<A = undefined> {
  /** The valid record a case corrupts; draw from `rng` to pick one of several. */
  valid: (rng: Rng) => Record<string, unknown>;
  /** The parser under test: must never throw. */
  parse: (bytes: Uint8Array, arg: A) => unknown;
  /** Every way a record the parser accepted violates its type (`[]`: none). */
  violations: (record: unknown) => string[];
  /**
   * The parser the schema replaced, if any: where it returns null so must `parse`; where it returns a
   * record without violations, `parse` returns an equal one (but for the {@link tightened} inputs).
   */
  reference?: (bytes: Uint8Array, arg: A) => unknown;
  /** Inputs the reference read as a valid record that `parse` rejects on purpose. */
  tightened?: (bytes: Uint8Array) => boolean;
  /** The extra argument of `parse` and `reference` for a case, drawn after its bytes. */
  arg?: (rng: Rng) => A;
  /** One run of {@link cases} cases per seed; default `[1, 2, 3]`. */
  seeds?: readonly number[];
  /** Cases per seed; default 3000. */
  cases?: number;
  /** Prefix of the failure messages (e.g. the parser's name). */
  label?: string;
}

/** What {@link RecordFuzz.checkSchema} checks. */
export interface SchemaFuzz<T> {
  schema: SafeParser<T>;
  /** The valid record a case corrupts; draw from `rng` to pick one of several. */
  valid: (rng: Rng) => Record<string, unknown>;
  /** Every way the output of a successful parse violates its type (`[]`: none). */
  violations: (data: T) => string[];
  /** Cases; default 3000. */
  cases?: number;
  /** The randomness: default `new Rng(7)`; pass one to continue its sequence over several calls. */
  rng?: Rng;
  /** Prefix of the failure messages (e.g. the schema's name). */
  label?: string;
}

/** Values JSON cannot carry, put in by {@link RecordFuzz.checkSchema}. */
const ODD: readonly unknown[] = [
  NaN,
  Infinity,
  -Infinity,
  -1,
  undefined,
  0n,
  Symbol('s'),
  () => 1,
  new Date(0),
];

/**
 * Seeded corruptions of one kind of JSON record, and the checks of its parser and schema against them. The
 * same seeds give the same cases on every machine.
 *
 * @example
 * const fuzz = new RecordFuzz({ bareString: 'node-a', strings: ['node-b'] });
 * it('never throws, never accepts a violation, and agrees with the old parser (seeded)', () =>
 *   fuzz.checkParser({ valid: () => VALID, parse: parseRecord, violations, reference: legacyParse }));
 * it('the schema never throws and never outputs a violation (seeded)', () =>
 *   fuzz.checkSchema({ schema: recordSchema, valid: () => VALID, violations }));
 */
export class RecordFuzz {
  /** The wrong values a field can be changed to (deep-copied before use). */
  readonly weird: readonly unknown[];
  readonly #bare: string;

  constructor(opts: RecordFuzzOptions) {
    const { strings = [], arrays = [], objects = [] } = opts;
    const weird: unknown[] = [null, true, false, 0, -1, -0.5, 1.5, 2 ** 60, '', 'x', ...strings];
    weird.push([], ['a', 1], ...arrays, {}, { a: 1 }, ...objects);
    this.weird = weird;
    this.#bare = JSON.stringify(opts.bareString);
  }

  /** A fresh copy of one of {@link weird}. */
  weirdValue(rng: Rng): unknown {
    return structuredClone(rng.pick(this.weird));
  }

  /** A deep copy of `base` with 1 to 3 fields changed to wrong types, dropped, added or changed inside. */
  mutate(rng: Rng, base: Record<string, unknown>): Record<string, unknown> {
    const r = structuredClone(base);
    for (let n = rng.int(1, 3); n > 0; n--) {
      const k = rng.pick(Object.keys(base));
      const op = rng.weighted({ wrong: 5, drop: 3, extra: 2, inner: 2 });
      if (op === 'wrong') r[k] = this.weirdValue(rng);
      else if (op === 'drop') delete r[k];
      else if (op === 'extra') r[`extra${rng.int(0, 3)}`] = this.weirdValue(rng);
      else {
        const v = r[k];
        if (Array.isArray(v)) v[rng.int(0, v.length)] = this.weirdValue(rng);
        else if (is.object(v)) {
          const keys = Object.keys(v);
          if (keys.length && rng.chance(0.3)) delete v[rng.pick(keys)];
          else v[rng.chance(0.7) && keys.length ? rng.pick(keys) : 'extra'] = this.weirdValue(rng);
        } else r[k] = this.weirdValue(rng);
      }
    }
    return r;
  }

  /** `json` as bytes, sometimes corrupted: a number out of range, cut short, a byte changed, garbage. */
  toBytes(rng: Rng, json: string): Uint8Array {
    const op = rng.weighted({ none: 8, infinite: 1, truncate: 1, flip: 1, garbage: 1, other: 1 });
    if (op === 'infinite') return enc.encode(json.replace(/-?\d+(\.\d+)?/, rng.pick(['1e999', '-1e999'])));
    const b = enc.encode(json);
    if (op === 'truncate') return b.subarray(0, rng.int(0, b.length - 1));
    if (op === 'flip') {
      b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      return b;
    }
    if (op === 'garbage') return Uint8Array.from({ length: rng.int(0, 40) }, () => rng.int(0, 255));
    if (op === 'other') return enc.encode(rng.pick(['null', '[]', '42', this.#bare, 'true', '[{}]', '{}']));
    return b;
  }

  /**
   * Runs `parse` on `cases` corrupted valid records per seed: it never throws, every record it returns has
   * no violations, and it agrees with `reference` where that one found no record or a valid one. Throws
   * an AssertionError naming the seed, the case and the bytes at the first failure.
   */
  checkParser<A = undefined>(opts: ParserFuzz<A>): void {
    const { seeds = [1, 2, 3], cases = 3000, label } = opts;
    for (const seed of seeds) {
      const rng = new Rng(seed);
      for (let i = 0; i < cases; i++) {
        const bytes = this.toBytes(rng, JSON.stringify(this.mutate(rng, opts.valid(rng))));
        const arg = opts.arg ? opts.arg(rng) : (undefined as A);
        const what = `${label ? `${label} ` : ''}seed ${seed} case ${i}${opts.arg ? ` arg ${String(arg)}` : ''}: ${dec.decode(bytes)}`;
        let got: unknown;
        try {
          got = opts.parse(bytes, arg);
        } catch (e) {
          fail(`${what}: threw ${String(e)}`);
        }
        if (got !== null) deepStrictEqual(opts.violations(got), [], `${what}: accepted a violation`);
        if (!opts.reference) continue;
        const old = opts.reference(bytes, arg);
        // Where the reference found no record, neither does the parser; where it returned a valid record,
        // the parser returns the same (but for the tightened inputs). Where the reference let a violation
        // through, the parser rejects or defaults it, checked above.
        if (old === null) strictEqual(got, null, `${what}: the reference found no record`);
        else if (opts.violations(old).length === 0) {
          if (opts.tightened?.(bytes)) strictEqual(got, null, `${what}: tightened, should be rejected`);
          else deepStrictEqual(got, old, `${what}: differs from the reference`);
        }
      }
    }
  }

  /**
   * Runs `schema` on `cases` corrupted valid records that also hold a value JSON cannot carry (NaN, a
   * bigint, a function...): it never throws, and every output of a successful parse has no violations.
   */
  checkSchema<T>(opts: SchemaFuzz<T>): void {
    const { cases = 3000, rng = new Rng(7), label } = opts;
    for (let i = 0; i < cases; i++) {
      const what = `${label ? `${label} ` : ''}case ${i}`;
      const r = this.mutate(rng, opts.valid(rng));
      r[rng.pick(Object.keys(r))] = rng.pick(ODD);
      let out: ReturnType<SafeParser<T>['safeParse']>;
      try {
        out = opts.schema.safeParse(r);
      } catch (e) {
        fail(`${what}: threw ${String(e)}`);
      }
      if (out.success) deepStrictEqual(opts.violations(out.data), [], `${what}: output a violation`);
    }
  }
}
