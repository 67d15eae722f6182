import { resourceNames } from '@gc/core';
import type { MemberRecord, PartitionRecord, PartitionStateValue } from './types.js';

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

const enc = new TextEncoder();
const dec = new TextDecoder();

export const encodeJson = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

function parse(bytes: Uint8Array): Record<string, unknown> | null {
  if (!bytes || bytes.length === 0) return null;
  try {
    const v = JSON.parse(dec.decode(bytes)) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const STATES: ReadonlySet<string> = new Set(['owning', 'owned', 'released']);

/** Parses a partition record; null when the bytes are not one. */
export function parsePartitionRecord(bytes: Uint8Array): PartitionRecord | null {
  const r = parse(bytes);
  if (!r || typeof r.owner !== 'string' || typeof r.epoch !== 'number' || !STATES.has(String(r.state)))
    return null;
  return {
    v: 1,
    owner: r.owner,
    instance: typeof r.instance === 'string' ? r.instance : '',
    epoch: r.epoch,
    state: r.state as PartitionStateValue,
    at: typeof r.at === 'number' ? r.at : 0,
    ...(typeof r.to === 'string' ? { to: r.to } : {}),
  };
}

/** Parses a member record; null when the bytes are not one. */
export function parseMemberRecord(bytes: Uint8Array): MemberRecord | null {
  const r = parse(bytes);
  if (
    !r ||
    typeof r.nodeId !== 'string' ||
    typeof r.instance !== 'string' ||
    typeof r.weight !== 'number' ||
    !(r.weight > 0) ||
    typeof r.ttlMs !== 'number'
  )
    return null;
  return {
    v: 1,
    nodeId: r.nodeId,
    instance: r.instance,
    weight: r.weight,
    ttlMs: r.ttlMs,
    state: r.state === 'leaving' ? 'leaving' : 'active',
    startedAt: typeof r.startedAt === 'number' ? r.startedAt : 0,
    heartbeatAt: typeof r.heartbeatAt === 'number' ? r.heartbeatAt : 0,
  };
}

/** Parses the config record. */
export function parseConfigRecord(bytes: Uint8Array): ConfigRecord | null {
  const r = parse(bytes);
  if (!r || typeof r.partitions !== 'number' || !Number.isInteger(r.partitions)) return null;
  return {
    v: 1,
    partitions: r.partitions,
    createdAt: typeof r.createdAt === 'number' ? r.createdAt : 0,
    createdBy: typeof r.createdBy === 'string' ? r.createdBy : '?',
  };
}

/** Parses a map record's JSON (after the fenced prefix was removed). */
export function parseMapRecord(bytes: Uint8Array): MapRecord | null {
  const r = parse(bytes);
  if (!r || typeof r.version !== 'number' || !Array.isArray(r.nodes) || !Array.isArray(r.assign)) return null;
  return {
    v: 1,
    version: r.version,
    coordinator: typeof r.coordinator === 'string' ? r.coordinator : '?',
    epoch: typeof r.epoch === 'number' ? r.epoch : 0,
    nodes: (r.nodes as unknown[]).map(String),
    assign: (r.assign as unknown[]).map((x) => (typeof x === 'number' ? x : -1)),
    reason: typeof r.reason === 'string' ? r.reason : '',
    at: typeof r.at === 'number' ? r.at : 0,
  };
}

/** Parses the pins record. */
export function parsePinsRecord(bytes: Uint8Array): PinsRecord | null {
  const r = parse(bytes);
  if (!r || !r.pins || typeof r.pins !== 'object') return null;
  const pins: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.pins as Record<string, unknown>))
    if (typeof v === 'string') pins[k] = v;
  return { v: 1, pins };
}

/** Strips the `gcf1 <epoch> p\n` prefix `fencedKv` stores (see `@gc/core`). */
export function unfence(bytes: Uint8Array): Uint8Array {
  const head = dec.decode(bytes.subarray(0, Math.min(bytes.length, 24)));
  const m = /^gcf1 \d{1,16} [pd]\n/.exec(head);
  return m ? bytes.subarray(m[0].length) : bytes;
}
