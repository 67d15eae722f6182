import type { MsgHdrs } from '@nats-io/nats-core';
import type { JsMsg } from '@nats-io/jetstream';

/**
 * Message headers for the WAL's hot path: the same bytes on the wire as nats.js's own headers
 * (`NATS/1.0`, then `Key: value` lines), built from an ordered list in one pass.
 *
 * nats.js's `MsgHdrs` canonicalises and searches every key on each `append`, and its encoder and decoder
 * do so again per line: for a WAL message's sixteen headers that was about 13 µs to build and 12 µs to read
 * back, per commit and on both sides, on a two-core machine shared with nats-server. This class keeps keys as
 * given (exact matching only, which is all the WAL uses) and implements `MsgHdrs`, so nats.js publishes it as
 * it would its own.
 */
export class WireHeaders implements MsgHdrs {
  readonly #entries: Array<[string, string]> = [];

  get hasError(): boolean {
    return false;
  }
  get status(): string {
    return '';
  }
  get code(): number {
    return 0;
  }
  get description(): string {
    return '';
  }

  /** Adds a value (keys may repeat). Throws for a key or value that would break the header block. */
  append(k: string, v: string): void {
    if (!VALID_KEY.test(k)) throw new TypeError(`invalid header name ${JSON.stringify(k)}`);
    if (BAD_VALUE.test(v)) throw new TypeError(`header ${k}: values cannot contain \\r or \\n`);
    // After the key's other values, as nats.js groups them (the same bytes on the wire).
    let at = this.#entries.length;
    while (at > 0 && this.#entries[at - 1]![0] !== k) at--;
    if (at === 0) this.#entries.push([k, v.trim()]);
    else this.#entries.splice(at, 0, [k, v.trim()]);
  }

  /** Replaces every value of `k` with `v`. */
  set(k: string, v: string): void {
    this.delete(k);
    this.append(k, v);
  }

  /** The first value of `k`, or `''`. */
  get(k: string): string {
    for (const [key, v] of this.#entries) if (key === k) return v;
    return '';
  }

  /** The last value of `k`, or `''`. */
  last(k: string): string {
    for (let i = this.#entries.length - 1; i >= 0; i--)
      if (this.#entries[i]![0] === k) return this.#entries[i]![1];
    return '';
  }

  has(k: string): boolean {
    return this.#entries.some(([key]) => key === k);
  }

  values(k: string): string[] {
    return this.#entries.filter(([key]) => key === k).map(([, v]) => v);
  }

  delete(k: string): void {
    for (let i = this.#entries.length - 1; i >= 0; i--)
      if (this.#entries[i]![0] === k) this.#entries.splice(i, 1);
  }

  keys(): string[] {
    return [...new Set(this.#entries.map(([k]) => k))];
  }

  *[Symbol.iterator](): Iterator<[string, string[]]> {
    for (const k of this.keys()) yield [k, this.values(k)];
  }

  /** The header block as nats.js would encode it (called by `publish`). */
  encode(): Uint8Array {
    return Buffer.from(this.toString(), 'utf8');
  }

  /** The header block as text. */
  toString(): string {
    let s = 'NATS/1.0';
    for (const [k, v] of this.#entries) s += `\r\n${k}: ${v}`;
    return `${s}\r\n\r\n`;
  }
}

/** A header name as NATS accepts it: printable ASCII without `:`. */
const VALID_KEY = /^[!-9;-~]+$/;
const BAD_VALUE = /[\r\n]/;

/** A message's headers, the first value of each key. */
export type HeaderMap = Map<string, string>;

/**
 * Reads a received message's headers in one pass, first value of each key. It reads the raw header block
 * that nats.js keeps on the message (nats.js 3.x: `JsMsg.msg._rdata` up to `_msg.hdr`) rather than having
 * nats.js decode it into a `MsgHdrs` (see {@link WireHeaders} for why); when that shape is not there (another
 * nats.js version), it falls back to `m.headers`. `headers.test.ts` checks that the installed nats.js takes
 * the fast path and that both give the same map. Keys are taken as sent, not canonicalised: a header block
 * that nats.js would refuse (a key with a space, say) gives keys the WAL does not know, and the message is
 * then refused as corrupt (`GC_WAL_CORRUPT_MESSAGE`, one bootstrap per cause) rather than failing to parse.
 */
export function messageHeaders(m: Pick<JsMsg, 'headers'>): HeaderMap {
  const raw = rawHeaderBlock(m);
  return raw ? parseHeaderBlock(raw) : headerMapOf(m.headers);
}

/** The raw header block nats.js 3.x keeps on a received message, or undefined. */
export function rawHeaderBlock(m: unknown): Uint8Array | undefined {
  const inner = (m as { msg?: { _msg?: { hdr?: unknown }; _rdata?: unknown } }).msg;
  const hdr = inner?._msg?.hdr;
  const data = inner?._rdata;
  if (typeof hdr !== 'number' || !(data instanceof Uint8Array) || hdr <= 0 || hdr > data.length)
    return undefined;
  return data.subarray(0, hdr);
}

/** Parses a `NATS/1.0` header block (as nats.js does: the key as sent, the value trimmed). */
export function parseHeaderBlock(raw: Uint8Array): HeaderMap {
  const s = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
  const m: HeaderMap = new Map();
  let at = s.indexOf('\r\n');
  if (at < 0) return m;
  at += 2;
  while (at < s.length) {
    let end = s.indexOf('\r\n', at);
    if (end < 0) end = s.length;
    const colon = s.indexOf(':', at);
    if (colon > at && colon < end) {
      const k = s.slice(at, colon);
      if (!m.has(k)) m.set(k, s.slice(colon + 1, end).trim());
    }
    at = end + 2;
  }
  return m;
}

/** The first value of each key of a decoded `MsgHdrs`. */
export function headerMapOf(h: MsgHdrs | undefined): HeaderMap {
  const m: HeaderMap = new Map();
  if (h) for (const [k, v] of h) if (v.length) m.set(k, v[0]!);
  return m;
}
