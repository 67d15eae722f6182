// The lock records in the bucket and how writes to them conflict.
import { isCasConflict, parseJsonRecord } from '@gc/core';
import { z } from 'zod';
import type { LockRecord, LockRelease } from './types.js';

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/**
 * Schema of {@link LockRelease}, the `released` field of a lock record: every field required (every version
 * of gc writes all four).
 */
export const lockReleaseSchema = z.object({
  by: z.string(),
  reason: z.string(),
  at: z.number(),
  forced: z.boolean(),
});

/**
 * Schema of a lock record as read from the bucket: parses the decoded JSON into a {@link LockRecord}.
 *
 * Required: `state` (`held` or `free`) and a numeric `epoch`; anything else makes the record invalid. Every
 * other field is read leniently, as records of older (or newer) versions may lack or change it: a missing or
 * mistyped `owner` becomes `'?'`, `instance` and `token` `''`, `acquiredAt` and `refreshedAt` 0, a `ttlMs`
 * that is not a positive number 0, and a `released` that is not a valid {@link LockRelease} undefined
 * ({@link parseLockRecord} leaves the key out). `v` is always 1. Unknown fields are accepted and dropped (newer nodes may add some). Numbers are finite
 * JSON numbers.
 */
export const lockRecordSchema = z.object({
  v: z.literal(1).catch(1),
  state: z.enum(['held', 'free']),
  epoch: z.number(),
  owner: z.string().catch('?'),
  instance: z.string().catch(''),
  token: z.string().catch(''),
  ttlMs: z.number().positive().catch(0),
  acquiredAt: z.number().catch(0),
  refreshedAt: z.number().catch(0),
  released: lockReleaseSchema.optional().catch(undefined),
});

// Compile-time proof that the schemas and the types cannot drift apart.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type _LockRecordMatches = Expect<Same<z.output<typeof lockRecordSchema>, LockRecord>>;
type _LockReleaseMatches = Expect<Same<z.output<typeof lockReleaseSchema>, LockRelease>>;

/** Parses a lock record (see {@link lockRecordSchema}); null when the bytes are not one. Never throws. */
export function parseLockRecord(bytes: Uint8Array): LockRecord | null {
  const r = parseJsonRecord(lockRecordSchema, bytes);
  if (r === null) return null;
  // An invalid `released` parses to undefined: leave the key out, as a record without one has none.
  if (r.released === undefined && 'released' in r) delete r.released;
  return r;
}

/** A compare-and-set that lost (the key moved on). */
export const isConflict = isCasConflict;

/** Thrown by a write whose expected revision was not the key's last. */
export class Conflict extends Error {}

/** A lock key's name and, for a semaphore permit, its slot. */
export function splitKey(key: string): { name: string; slot?: number } {
  const i = key.indexOf('.');
  if (i < 0) return { name: key };
  return { name: key.slice(0, i), slot: Number(key.slice(i + 1)) };
}

/** A revision of a lock key as this instance first saw it. */
export interface Seen {
  revision: number;
  /** Monotonic ms when this instance first saw `revision`. */
  at: number;
  record: LockRecord | null;
}
