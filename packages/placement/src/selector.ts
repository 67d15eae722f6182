import { SelectorSyntaxError } from './errors.js';
import type { Labels } from './types.js';

/** One term of a selector. `notIn` and `neq` also match nodes that lack the label (as Kubernetes). */
export type LabelRequirement =
  | { key: string; op: 'exists' | 'notExists' }
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notIn'; values: readonly string[] };

/** A parsed label selector: every requirement must hold. */
export interface LabelSelector {
  /** The text it was parsed from. */
  readonly source: string;
  readonly requirements: readonly LabelRequirement[];
  /** True when `labels` satisfy every requirement. */
  matches(labels: Labels): boolean;
}

const KEY_START = /[A-Za-z0-9]/;
const KEY_CHAR = /[A-Za-z0-9_.\-/]/;
const VALUE_CHAR = /[A-Za-z0-9_.\-:/]/;

class Parser {
  pos = 0;
  constructor(
    readonly src: string,
    readonly path: string | undefined,
  ) {}

  fail(problem: string, at = this.pos): never {
    throw new SelectorSyntaxError(this.src, at, problem, this.path);
  }
  ws(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
  }
  peek(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }
  found(): string {
    return this.pos >= this.src.length ? 'nothing' : JSON.stringify(this.src[this.pos]);
  }
  key(): string {
    this.ws();
    const start = this.pos;
    if (!KEY_START.test(this.src[this.pos] ?? '')) this.fail(`expected a label key, found ${this.found()}`);
    while (this.pos < this.src.length && KEY_CHAR.test(this.src[this.pos]!)) this.pos++;
    return this.src.slice(start, this.pos);
  }
  value(): string {
    this.ws();
    if (this.peek('"')) {
      const end = this.src.indexOf('"', this.pos + 1);
      if (end < 0) this.fail('unterminated quoted value');
      const v = this.src.slice(this.pos + 1, end);
      this.pos = end + 1;
      return v;
    }
    const start = this.pos;
    while (this.pos < this.src.length && VALUE_CHAR.test(this.src[this.pos]!)) this.pos++;
    if (start === this.pos) this.fail(`expected a label value, found ${this.found()}`);
    return this.src.slice(start, this.pos);
  }
  /** A word operator (`in`, `notin`) must be followed by a separator, not more key characters. */
  word(w: string): boolean {
    if (!this.src.startsWith(w, this.pos)) return false;
    const next = this.src[this.pos + w.length];
    if (next !== undefined && KEY_CHAR.test(next)) return false;
    this.pos += w.length;
    return true;
  }
  list(): string[] {
    this.ws();
    if (!this.peek('(')) this.fail(`expected "(" to open the value list, found ${this.found()}`);
    this.pos++;
    const values = [this.value()];
    for (;;) {
      this.ws();
      if (this.peek(')')) {
        this.pos++;
        return values;
      }
      if (!this.peek(',')) this.fail(`expected "," or ")" in the value list, found ${this.found()}`);
      this.pos++;
      values.push(this.value());
    }
  }
  term(): LabelRequirement {
    this.ws();
    if (this.peek('!') && !this.peek('!=')) {
      this.pos++;
      return { key: this.key(), op: 'notExists' };
    }
    const key = this.key();
    const afterKey = this.pos;
    this.ws();
    if (this.pos >= this.src.length || this.peek(',')) return { key, op: 'exists' };
    if (this.peek('==')) {
      this.pos += 2;
      return { key, op: 'eq', value: this.value() };
    }
    if (this.peek('!=')) {
      this.pos += 2;
      return { key, op: 'neq', value: this.value() };
    }
    if (this.peek('=')) {
      this.pos++;
      return { key, op: 'eq', value: this.value() };
    }
    if (this.pos > afterKey && this.word('notin')) return { key, op: 'notIn', values: this.list() };
    if (this.pos > afterKey && this.word('in')) return { key, op: 'in', values: this.list() };
    return this.fail(
      `expected an operator (=, ==, !=, in, notin) or "," after label key ${JSON.stringify(key)}, found ${this.found()}`,
    );
  }
  parse(): LabelRequirement[] {
    this.ws();
    if (this.pos >= this.src.length) this.fail('empty selector (to match every node, leave the field out)');
    const out = [this.term()];
    for (;;) {
      this.ws();
      if (this.pos >= this.src.length) return out;
      if (!this.peek(',')) this.fail(`expected "," between terms, found ${this.found()}`);
      this.pos++;
      out.push(this.term());
    }
  }
}

function test(r: LabelRequirement, labels: Labels): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = has ? labels[r.key] : undefined;
  switch (r.op) {
    case 'exists':
      return has;
    case 'notExists':
      return !has;
    case 'eq':
      return v === r.value;
    case 'neq':
      return v !== r.value;
    case 'in':
      return v !== undefined && r.values.includes(v);
    case 'notIn':
      return v === undefined || !r.values.includes(v);
  }
}

/**
 * Parses a label selector: comma-separated terms that must all hold — `disk=ssd` (or `==`), `arch!=arm`
 * (also true when the label is missing), `zone in (a,b)`, `zone notin (c)` (also true when missing),
 * `gpu` (label present), `!gpu` (label absent). Values are bare words (`[A-Za-z0-9_.-:/]`) or
 * double-quoted strings. Throws {@link SelectorSyntaxError} with the position of the problem.
 *
 * @param path where the selector came from, named in the error (`apps.orders.placement.onLabel`).
 * @example
 * ```ts
 * const ssdInEu = parseSelector('disk=ssd, zone in (eu-1,eu-2), !gpu');
 * ssdInEu.matches({ disk: 'ssd', zone: 'eu-1' }); // true
 * ```
 */
export function parseSelector(source: string, path?: string): LabelSelector {
  if (typeof source !== 'string') {
    throw new SelectorSyntaxError(String(source), 0, `a selector is a string, got ${typeof source}`, path);
  }
  const requirements = new Parser(source, path).parse();
  return {
    source,
    requirements,
    matches: (labels) => requirements.every((r) => test(r, labels)),
  };
}
