// Member records in the membership bucket: parsing, leave reasons, conflicts and TTL headers.
import { isCasConflict, parseJsonRecord, type TimerHandle } from '@gc/core';
import type { KvEntry } from '@nats-io/kv';
import { z } from 'zod';
import type { LeaveReason, MemberRecord } from './types.js';

export const enc = new TextEncoder();
export const dec = new TextDecoder();

const isString = (x: unknown): x is string => typeof x === 'string';

/** The string values of `v` when it is an object (not an array), else none. */
function stringValues(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => isString(e[1])));
}

/**
 * Schema of a member record as stored in the membership bucket: parses the decoded JSON into a
 * {@link MemberRecord} whose `failAfterMs` is left undefined when the record has no valid one
 * ({@link parseMemberRecord} then applies the default, `3 * heartbeatMs`, as observers do).
 *
 * Required: a string `nodeId` and a numeric `heartbeatMs`; anything else makes the record invalid. Every
 * other field is read leniently, as records of older (or newer) versions may lack or change it: a missing or
 * mistyped `instance` or `version` becomes `''`, `startedAt` and `heartbeatAt` 0, `labels` keeps only its
 * string values (`{}` when it is not an object), `apps` only its strings (`[]` when it is not an array), and
 * a `failAfterMs` that is not a positive number is undefined. `v` is always 1. Unknown fields are accepted and
 * dropped (newer nodes may add some). Numbers are finite JSON numbers.
 */
export const memberRecordSchema = z.object({
  v: z.literal(1).catch(1),
  nodeId: z.string(),
  instance: z.string().catch(''),
  labels: z.record(z.string(), z.string()).catch((ctx) => stringValues(ctx.value)),
  apps: z.array(z.string()).catch((ctx) => (Array.isArray(ctx.value) ? ctx.value.filter(isString) : [])),
  version: z.string().catch(''),
  startedAt: z.number().catch(0),
  heartbeatAt: z.number().catch(0),
  heartbeatMs: z.number(),
  failAfterMs: z.number().positive().optional().catch(undefined),
});

// Compile-time proof that the schema and the type cannot drift apart (the schema leaves `failAfterMs` to the
// parser: it defaults from another field, which a field schema cannot see without a slower whole-record pipe).
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type Flat<T> = { [K in keyof T]: T[K] };
type _MemberRecordMatches = Expect<
  Same<
    z.output<typeof memberRecordSchema>,
    Flat<Omit<MemberRecord, 'failAfterMs'> & { failAfterMs?: number }>
  >
>;

/** Parses a member record (see {@link memberRecordSchema}); null when the bytes are not one. Never throws. */
export function parseMemberRecord(bytes: Uint8Array): MemberRecord | null {
  const r = parseJsonRecord(memberRecordSchema, bytes);
  if (r === null) return null;
  // The parsed record is a fresh object: completed in place (`failAfterMs` is its last field, as it was).
  r.failAfterMs ??= 3 * r.heartbeatMs;
  return r as MemberRecord;
}

/** Why a member left, from the delete or purge of its record. */
export function leaveReasonOf(e: KvEntry): LeaveReason {
  // gc writes {"reason": ...} into the deletes it makes; a server TTL marker has no body.
  if (e.value.length === 0) return e.operation === 'PURGE' ? 'expired' : 'left';
  try {
    const r = (JSON.parse(dec.decode(e.value)) as { reason?: unknown }).reason;
    return r === 'expired' ? 'expired' : 'left';
  } catch {
    return 'left';
  }
}

/** A compare-and-set that lost (the key moved on). */
export const isConflict = isCasConflict;

/** Go duration for a per-key TTL: whole seconds, rounded up (never shorter than asked). */
export function ttlHeader(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`;
}

/** Same member shape (instance, version, labels, apps): a heartbeat that changes none of them is not news. */
export function sameShape(a: MemberRecord, b: MemberRecord): boolean {
  return (
    a.instance === b.instance &&
    a.version === b.version &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels) &&
    JSON.stringify(a.apps) === JSON.stringify(b.apps)
  );
}

/** What an observer knows of one member. */
export interface ViewEntry {
  record: MemberRecord;
  revision: number;
  /** Monotonic ms when this observer first saw `revision`. */
  at: number;
  timer?: TimerHandle;
  /** A verification read failed: the next successful one restarts the window instead of expiring. */
  blind?: boolean;
  /** Not judged before this monotonic time (after this observer reconnected: members reconnect later). */
  notBefore?: number;
}
