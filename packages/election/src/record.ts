// The lease record stored under the election key: its schema and its parser.
import { parseJsonRecord } from '@gc/core';
import { z } from 'zod';
import type { LeaseRecord } from './types.js';

/**
 * Schema of the lease record stored under the election key (a public format): parses the decoded JSON into a
 * {@link LeaseRecord}.
 *
 * Required: a string `holder` and numeric `epoch` and `ttlMs`; anything else makes the record invalid. Every
 * other field is read leniently, as records of older (or newer) versions may lack or change it: a missing or
 * mistyped `instance` becomes `''`, `live` false (only `true` is true), `priority` and `grantedAt` 0.
 * Unknown fields are accepted and dropped (newer nodes may add some). Numbers are finite JSON numbers.
 */
export const leaseRecordSchema = z.object({
  holder: z.string(),
  instance: z.string().catch(''),
  epoch: z.number(),
  ttlMs: z.number(),
  live: z.boolean().catch(false),
  priority: z.number().catch(0),
  grantedAt: z.number().catch(0),
});

// Compile-time proof that the schema and the type cannot drift apart.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type _LeaseRecordMatches = Expect<Same<z.output<typeof leaseRecordSchema>, LeaseRecord>>;

/**
 * Parses a lease record (see {@link leaseRecordSchema}); null when the bytes are not one (treated as a
 * foreign holder by callers). Never throws.
 */
export function parseRecord(bytes: Uint8Array): LeaseRecord | null {
  return parseJsonRecord(leaseRecordSchema, bytes);
}
