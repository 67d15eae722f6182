// Reading one JSON record off the wire through its schema: the part every record parser shares.
import type { z } from 'zod';

const dec = new TextDecoder();

/**
 * Parses `bytes` as JSON and validates the value with `schema`: the schema's output, or null when the bytes
 * are empty, not JSON (invalid UTF-8 included) or not a valid record. Never throws. The output is a fresh
 * object the caller may complete or trim in place.
 *
 * @example
 * const lease = parseJsonRecord(leaseRecordSchema, entry.value); // LeaseRecord | null
 */
export function parseJsonRecord<T>(schema: z.ZodType<T>, bytes: Uint8Array): T | null {
  if (bytes.length === 0) return null;
  let json: unknown;
  try {
    json = JSON.parse(dec.decode(bytes));
  } catch {
    return null;
  }
  const r = schema.safeParse(json);
  return r.success ? r.data : null;
}
