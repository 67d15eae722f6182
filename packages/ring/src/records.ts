import { parseJsonRecord, resourceNames } from '@gc/core';
import { z } from 'zod';
import { PartitionState, type MemberRecord, type PartitionRecord } from './types.js';

/**
 * Names in one app's ring (a public contract, documented in the README):
 *
 * | what | name |
 * |---|---|
 * | bucket | `{platform}_{app}_ring` |
 * | partition count | key `config` |
 * | member lease | key `members.{nodeId}` |
 * | coordinator lease (`@gc/election`) | key `coordinator` |
 * | coordinator's assignment | key `map` (a fenced record, `fencedKv` from `@gc/core`) |
 * | pins | key `pins` |
 * | partition ownership | key `p.{partition}` |
 */
export function ringNames(platform: string, app: string) {
  const n = resourceNames(platform).app(app);
  return {
    platform: n.platform,
    app: n.app,
    bucket: `${n.platform}_${n.app}_ring`,
    config: 'config',
    coordinator: 'coordinator',
    map: 'map',
    pins: 'pins',
    memberPrefix: 'members.',
    member: (nodeId: string) => `members.${nodeId}`,
    partitionPrefix: 'p.',
    partition: (p: number) => `p.${p}`,
  };
}
export type RingNames = ReturnType<typeof ringNames>;

/** Stored partition count (key `config`). */
export interface ConfigRecord {
  v: 1;
  partitions: number;
  createdAt: number;
  createdBy: string;
}

/** The coordinator's assignment (key `map`, stored through `fencedKv` with the coordinator's epoch). */
export interface MapRecord {
  v: 1;
  /** Increases with every map written. */
  version: number;
  /** Node id of the coordinator that wrote it. */
  coordinator: string;
  /** Its election epoch. */
  epoch: number;
  /** Node ids referenced by `assign`. */
  nodes: string[];
  /** Target per partition: index into `nodes`, -1 for none. */
  assign: number[];
  /** Why it was written. */
  reason: string;
  /** Wall-clock ms (display only). */
  at: number;
}

/** Pinned partitions (key `pins`). */
export interface PinsRecord {
  v: 1;
  pins: Record<string, string>;
}

// The schemas below read every record of the bucket the same way: the fields a record cannot do without are
// required (a record without them is invalid: its parser returns null); every other field is read leniently,
// as records of older (or newer) versions may lack or change it, with the default each schema names; `v` is
// always 1; unknown fields are accepted and dropped (newer nodes may add some); numbers are finite JSON numbers.

/**
 * Schema of a {@link PartitionRecord} (key `p.{partition}`). Required: a string `owner`, a numeric `epoch` and
 * a `state` of {@link PartitionState}. Lenient: `instance` (default `''`), `at` (default 0), `to` (undefined
 * unless a string; {@link parsePartitionRecord} then leaves the key out).
 */
export const ringPartitionRecordSchema = z.object({
  v: z.literal(1).catch(1),
  owner: z.string(),
  instance: z.string().catch(''),
  epoch: z.number(),
  state: z.enum(PartitionState),
  at: z.number().catch(0),
  to: z.string().optional().catch(undefined),
});

/**
 * Schema of a ring {@link MemberRecord} (key `members.{nodeId}`). Required: string `nodeId` and `instance`, a
 * `weight` > 0 and a numeric `ttlMs`. Lenient: `state` (`leaving`, anything else `active`), `startedAt` and
 * `heartbeatAt` (default 0).
 */
export const ringMemberRecordSchema = z.object({
  v: z.literal(1).catch(1),
  nodeId: z.string(),
  instance: z.string(),
  weight: z.number().positive(),
  ttlMs: z.number(),
  state: z.enum(['active', 'leaving']).catch('active'),
  startedAt: z.number().catch(0),
  heartbeatAt: z.number().catch(0),
});

/**
 * Schema of the {@link ConfigRecord} (key `config`). Required: an integer `partitions` (a safe integer).
 * Lenient: `createdAt` (default 0), `createdBy` (default `'?'`).
 */
export const ringConfigRecordSchema = z.object({
  v: z.literal(1).catch(1),
  partitions: z.number().int(),
  createdAt: z.number().catch(0),
  createdBy: z.string().catch('?'),
});

/**
 * Schema of the {@link MapRecord} (key `map`, after {@link unfence}). Required: a numeric `version` and the
 * arrays `nodes` and `assign`. Lenient: `nodes` entries are turned into strings, `assign` entries that are not
 * (finite) numbers become -1; `coordinator` (default `'?'`), `epoch` and `at` (default 0), `reason` (default `''`).
 */
export const ringMapRecordSchema = z.object({
  v: z.literal(1).catch(1),
  version: z.number(),
  coordinator: z.string().catch('?'),
  epoch: z.number().catch(0),
  nodes: z.array(z.string()).or(z.array(z.unknown()).transform((a) => a.map(String))),
  assign: z
    .array(z.number())
    .or(
      z
        .array(z.unknown())
        .transform((a) => a.map((x) => (typeof x === 'number' && Number.isFinite(x) ? x : -1))),
    ),
  reason: z.string().catch(''),
  at: z.number().catch(0),
});

/**
 * Schema of the {@link PinsRecord} (key `pins`). Required: a `pins` object (not an array); only its string
 * values are kept.
 */
export const ringPinsRecordSchema = z.object({
  v: z.literal(1).catch(1),
  pins: z
    .record(z.string(), z.string())
    .or(
      z
        .record(z.string(), z.unknown())
        .transform((p): Record<string, string> =>
          Object.fromEntries(
            Object.entries(p).filter((e): e is [string, string] => typeof e[1] === 'string'),
          ),
        ),
    ),
});

// Compile-time proof that the schemas and the types cannot drift apart.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type _RingRecordsMatch = [
  Expect<Same<z.output<typeof ringPartitionRecordSchema>, PartitionRecord>>,
  Expect<Same<z.output<typeof ringMemberRecordSchema>, MemberRecord>>,
  Expect<Same<z.output<typeof ringConfigRecordSchema>, ConfigRecord>>,
  Expect<Same<z.output<typeof ringMapRecordSchema>, MapRecord>>,
  Expect<Same<z.output<typeof ringPinsRecordSchema>, PinsRecord>>,
];

const enc = new TextEncoder();
const dec = new TextDecoder();

/** `v` as JSON bytes (how the ring writes its records). */
export const encodeJson = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

/** Reads `bytes` with `schema`; null when they are empty, not JSON or not valid. Never throws. */
const read = parseJsonRecord;

/** Parses a partition record (see {@link ringPartitionRecordSchema}); null when the bytes are not one. */
export function parsePartitionRecord(bytes: Uint8Array): PartitionRecord | null {
  const r = read(ringPartitionRecordSchema, bytes);
  // A `to` that is not a string parses to undefined: leave the key out, as a record without one has none.
  if (r && r.to === undefined && 'to' in r) delete r.to;
  return r;
}

/** Parses a member record (see {@link ringMemberRecordSchema}); null when the bytes are not one. */
export function parseMemberRecord(bytes: Uint8Array): MemberRecord | null {
  return read(ringMemberRecordSchema, bytes);
}

/** Parses the config record (see {@link ringConfigRecordSchema}); null when the bytes are not one. */
export function parseConfigRecord(bytes: Uint8Array): ConfigRecord | null {
  return read(ringConfigRecordSchema, bytes);
}

/**
 * Parses a map record's JSON (after the fenced prefix was removed; see {@link ringMapRecordSchema}); null when
 * the bytes are not one.
 */
export function parseMapRecord(bytes: Uint8Array): MapRecord | null {
  return read(ringMapRecordSchema, bytes);
}

/** Parses the pins record (see {@link ringPinsRecordSchema}); null when the bytes are not one. */
export function parsePinsRecord(bytes: Uint8Array): PinsRecord | null {
  return read(ringPinsRecordSchema, bytes);
}

/** Strips the `gcf1 <epoch> p\n` prefix `fencedKv` stores (see `@gc/core`). */
export function unfence(bytes: Uint8Array): Uint8Array {
  const head = dec.decode(bytes.subarray(0, Math.min(bytes.length, 24)));
  const m = /^gcf1 \d{1,16} [pd]\n/.exec(head);
  return m ? bytes.subarray(m[0].length) : bytes;
}
