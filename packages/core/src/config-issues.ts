// Turns the issues of a zod schema into a `ConfigError` whose message names the field, the value it had and
// what is allowed: one place for every package that validates its options through its schema.
import { ConfigError } from './errors.js';
import { z } from 'zod';

/** One issue of a failed parse, as zod reports it. */
export type ConfigIssue = z.core.$ZodIssue;

interface BoundCheck {
  check: string;
  value?: unknown;
  inclusive?: boolean;
}

type Schema = z.core.$ZodType;

function unwrap(schema: Schema): Schema {
  let s = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable)
    s = s.unwrap();
  return s;
}

function child(parent: Schema, key: PropertyKey): Schema | undefined {
  const s = unwrap(parent);
  if (s instanceof z.ZodObject)
    return typeof key === 'string' ? (s.shape as Record<string, Schema | undefined>)[key] : undefined;
  if (s instanceof z.ZodArray) return typeof key === 'number' ? s.element : undefined;
  if (s instanceof z.ZodRecord) return s.valueType;
  if (s instanceof z.ZodUnion) {
    for (const option of s.options) {
      const c = child(option, key);
      if (c) return c;
    }
  }
  return undefined;
}

/** The schema of the value at `path` inside `schema`, or undefined when the path leaves it. */
function schemaAt(schema: Schema, path: readonly PropertyKey[]): Schema | undefined {
  let s: Schema | undefined = schema;
  for (const key of path) s = s && child(s, key);
  return s;
}

function checksOf(s: Schema): BoundCheck[] {
  const checks = (s._zod.def as { checks?: Array<{ _zod: { def: BoundCheck } }> }).checks ?? [];
  return checks.map((c) => c._zod.def);
}

function numberRange(s: z.ZodNumber): string {
  const int = s.isInt;
  let lo = -Infinity;
  let loIn = true;
  let hi = Infinity;
  let hiIn = true;
  for (const c of checksOf(s)) {
    if (typeof c.value !== 'number') continue;
    if (c.check === 'greater_than' && c.value >= lo) [lo, loIn] = [c.value, c.inclusive !== false];
    if (c.check === 'less_than' && c.value <= hi) [hi, hiIn] = [c.value, c.inclusive !== false];
  }
  // An integer above 0 is an integer of at least 1: say it that way.
  if (int && !loIn && Number.isFinite(lo)) [lo, loIn] = [Math.floor(lo) + 1, true];
  if (int && !hiIn && Number.isFinite(hi)) [hi, hiIn] = [Math.ceil(hi) - 1, true];
  const kind = int ? 'an integer' : 'a number';
  if (Number.isFinite(lo) && Number.isFinite(hi))
    return `${kind} in ${loIn ? '[' : '('}${lo}, ${hi}${hiIn ? ']' : ')'}`;
  if (Number.isFinite(lo)) return `${kind} ${loIn ? '≥' : '>'} ${lo}`;
  if (Number.isFinite(hi)) return `${kind} ${hiIn ? '≤' : '<'} ${hi}`;
  return kind;
}

const oneOf = (values: readonly unknown[]): string =>
  values.length === 1 ? show(values[0]) : `one of ${values.map(show).join(', ')}`;

/** What `schema` accepts, in words: its description when it has one. */
function allowed(schema: Schema): string {
  const s = unwrap(schema);
  const description = z.globalRegistry.get(schema)?.description ?? z.globalRegistry.get(s)?.description;
  if (description) return description;
  if (s instanceof z.ZodNumber) return numberRange(s);
  if (s instanceof z.ZodString) return s.minLength ? 'a non-empty string' : 'a string';
  if (s instanceof z.ZodBoolean) return 'true or false';
  if (s instanceof z.ZodLiteral) return oneOf([...s.values]);
  if (s instanceof z.ZodEnum) return oneOf(s.options);
  if (s instanceof z.ZodArray) return `a list (each ${allowed(s.element)})`;
  if (s instanceof z.ZodObject) return `an object with keys ${Object.keys(s.shape).join(', ')}`;
  if (s instanceof z.ZodRecord) return 'an object';
  if (s instanceof z.ZodUnion) return s.options.map(allowed).join(' or ');
  return 'a valid value';
}

/** A value for an error message: JSON where possible, cut to a readable length. */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'symbol') return String(v);
  let text: string;
  try {
    // Undefined for what JSON cannot hold (handled above, but the type says string).
    const json: string | undefined = JSON.stringify(v);
    text = json ?? typeof v;
  } catch {
    text = `${Array.isArray(v) ? 'a list' : `an ${typeof v}`} that is not JSON`;
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** `prefix.a.b[0].c`. */
function pathOf(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

function messageOf(schema: Schema, issue: ConfigIssue): string {
  if (issue.code === 'custom') return issue.message;
  const at = schemaAt(schema, issue.path);
  if (issue.code === 'unrecognized_keys') {
    const s = at && unwrap(at);
    const keys = s instanceof z.ZodObject ? Object.keys(s.shape).join(', ') : undefined;
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${keys ? `; allowed keys: ${keys}` : ''}`;
  }
  return `must be ${at ? allowed(at) : 'a valid value'}, got ${show(issue.input)}`;
}

/**
 * Parses `value` with `schema`; throws a `ConfigError` whose path is `prefix` plus the first bad field's
 * path and whose message names what that field holds and what is allowed (then any other bad field).
 * Issues for which `defer` returns true are left to the caller, which checks them after (with its own
 * error classes); when only such issues remain, `value` is returned as it is.
 */
export function checkConfig<S extends z.ZodType>(
  schema: S,
  value: unknown,
  prefix: string,
  defer?: (issue: ConfigIssue) => boolean,
): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.filter((issue) => !defer?.(issue));
  if (!issues.length) return value as z.output<S>;
  const [first, ...rest] = issues.map((issue) => ({
    path: pathOf(prefix, issue.path),
    message: messageOf(schema, issue),
  }));
  const more = rest.length ? `; also ${rest.map((r) => `${r.path}: ${r.message}`).join('; ')}` : '';
  throw new ConfigError(first!.path, `${first!.message}${more}`, { cause: result.error });
}

/** The fields of `value` that `schema` (an object schema) declares, for checking a larger options object. */
export function configFields(schema: z.ZodObject, value: object): Record<string, unknown> {
  const v = value as Record<string, unknown>;
  return Object.fromEntries(Object.keys(schema.shape).map((k) => [k, v[k]]));
}

/**
 * `v` when it is an integer in [`min`, `max`]; otherwise throws a `ConfigError` at `path` that names the range
 * and the value (`must be an integer in [1, ∞], got 0`). For the rules an options schema does not carry.
 */
export function checkInteger(path: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(
      path,
      `must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(v)}`,
    );
  }
  return v;
}
