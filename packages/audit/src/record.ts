// The schema of a stored audit record.
import { z } from 'zod';
import { AuditSeverity, type AuditRecord } from './types.js';

/**
 * Schema of a stored audit record (a message on `{platform}._.audit.>`, schema version 1): parses the decoded
 * JSON into an {@link AuditRecord} without `seq` (the stream sequence is not part of the message; the reader
 * adds it). `app` and `epoch` parse to undefined when mistyped ({@link parseAuditRecord} leaves them out).
 *
 * Required: string `id`, `type` and `time`; anything else makes the record invalid. Every other field is read
 * leniently, as records of older (or newer) versions may lack or change it: a missing or mistyped `node`
 * becomes `''`, `severity` `info`, a missing or null `data` `{}`, and `app` (a string) and `epoch` (a number)
 * are undefined when absent or mistyped. `v` is always 1. Unknown fields are accepted and dropped (newer
 * nodes may add some). Numbers are finite JSON numbers.
 */
export const auditRecordSchema = z.object({
  v: z.literal(1).catch(1),
  id: z.string(),
  time: z.string(),
  node: z.string().catch(''),
  type: z.string(),
  app: z.string().optional().catch(undefined),
  epoch: z.number().optional().catch(undefined),
  severity: z.enum(AuditSeverity).catch(AuditSeverity.Info),
  data: z
    .unknown()
    .refine((d): boolean => d !== undefined && d !== null)
    .catch(() => ({})),
});

// Compile-time proof that the schema and the type cannot drift apart.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type _AuditRecordMatches = Expect<Same<z.output<typeof auditRecordSchema>, Omit<AuditRecord, 'seq'>>>;
