// Member records in the membership bucket: parsing, leave reasons, conflicts and TTL headers.
import { isCasConflict, type TimerHandle } from '@gc/core';
import type { KvEntry } from '@nats-io/kv';
import type { LeaveReason, MemberRecord } from './types.js';

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** Parses a member record; null when the bytes are not one. */
export function parseMemberRecord(bytes: Uint8Array): MemberRecord | null {
  if (bytes.length === 0) return null;
  try {
    const r = JSON.parse(dec.decode(bytes)) as Partial<MemberRecord>;
    if (typeof r.nodeId !== 'string' || typeof r.heartbeatMs !== 'number') return null;
    return {
      v: 1,
      nodeId: r.nodeId,
      instance: typeof r.instance === 'string' ? r.instance : '',
      labels: r.labels && typeof r.labels === 'object' ? r.labels : {},
      apps: Array.isArray(r.apps) ? r.apps.filter((a): a is string => typeof a === 'string') : [],
      version: typeof r.version === 'string' ? r.version : '',
      startedAt: typeof r.startedAt === 'number' ? r.startedAt : 0,
      heartbeatAt: typeof r.heartbeatAt === 'number' ? r.heartbeatAt : 0,
      heartbeatMs: r.heartbeatMs,
      failAfterMs: typeof r.failAfterMs === 'number' && r.failAfterMs > 0 ? r.failAfterMs : 3 * r.heartbeatMs,
    };
  } catch {
    return null;
  }
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
