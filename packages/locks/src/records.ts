// The lock records in the bucket and how writes to them conflict.
import { isCasConflict } from '@gc/core';
import type { LockRecord } from './types.js';

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** Parses a lock record; null when the bytes are not one. */
export function parseLockRecord(bytes: Uint8Array): LockRecord | null {
  if (bytes.length === 0) return null;
  try {
    const r = JSON.parse(dec.decode(bytes)) as Partial<LockRecord>;
    if ((r.state !== 'held' && r.state !== 'free') || typeof r.epoch !== 'number') return null;
    return {
      v: 1,
      state: r.state,
      epoch: r.epoch,
      owner: typeof r.owner === 'string' ? r.owner : '?',
      instance: typeof r.instance === 'string' ? r.instance : '',
      token: typeof r.token === 'string' ? r.token : '',
      ttlMs: typeof r.ttlMs === 'number' && r.ttlMs > 0 ? r.ttlMs : 0,
      acquiredAt: typeof r.acquiredAt === 'number' ? r.acquiredAt : 0,
      refreshedAt: typeof r.refreshedAt === 'number' ? r.refreshedAt : 0,
      ...(r.released ? { released: r.released } : {}),
    };
  } catch {
    return null;
  }
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
