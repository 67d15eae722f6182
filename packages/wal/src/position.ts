import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { formatChecksum } from '@gc/sqlite';
import { WrongOwnerError } from './errors.js';

/** A replica's (or primary's) durable position in the replicated history. */
export interface WalPosition {
  /** Last transaction applied (replica) or acknowledged by the stream (primary). 0 = none. */
  txid: number;
  /** Stream sequence of the last message of `txid`. */
  seq: number;
  /** Epoch of `txid`. */
  epoch: number;
  /** Database checksum after `txid` (16 hex digits). */
  checksum: string;
  /** Page size in bytes (0 before the first transaction). */
  pageSizeBytes: number;
  /** Database size in pages after `txid`. */
  dbPages: number;
}

/** The position before the first transaction (nothing applied or acknowledged yet); a fresh object. */
export function emptyPosition(): WalPosition {
  return { txid: 0, seq: 0, epoch: 0, checksum: formatChecksum(0n), pageSizeBytes: 0, dbPages: 0 };
}

/** The sidecar file: position plus owner. */
export interface PositionFile extends WalPosition {
  platform: string;
  app: string;
  /** `replica` or `primary`. */
  role: 'replica' | 'primary';
  /** Wall-clock ms of the write. */
  updatedAtMs: number;
  /**
   * Creation time of the WAL stream the position refers to (a replica's): a stream deleted and made anew
   * has another, and its sequences mean something else.
   */
  streamCreated?: string;
  /**
   * A primary's: the epoch it publishes with. When the history's tip carries this epoch, the tip is a state
   * this node captured from this very file, so the file descends from it.
   */
  leaderEpoch?: number;
}

/** Reads a sidecar; undefined when missing. Throws {@link WrongOwnerError} when it belongs to another app. */
export function readPosition(path: string, platform: string, app: string): PositionFile | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let p: PositionFile;
  try {
    p = JSON.parse(raw) as PositionFile;
  } catch {
    return undefined;
  }
  if (p.platform !== platform || p.app !== app) {
    throw new WrongOwnerError(path, `${p.platform}/${p.app}`, `${platform}/${app}`);
  }
  return p;
}

/** Writes a sidecar atomically: temp file, optional fsync, rename. */
export function writePosition(path: string, p: PositionFile, durable = true): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify(p));
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Writes a sidecar atomically off the event loop (temp file, rename; no fsync: used where a lost update
 * only means an older position). Not to be run concurrently with another write of the same path.
 */
export async function writePositionAsync(path: string, p: PositionFile): Promise<void> {
  const tmp = `${path}.tmp-async`;
  await writeFile(tmp, JSON.stringify(p));
  await rename(tmp, path);
}

/** fsync of a directory (after renames). */
export function fsyncDir(dir: string): void {
  fsyncPath(dir, 'r');
}

/** fsync of a file just written or copied (before it is handed on as durable). */
export function fsyncFile(path: string): void {
  fsyncPath(path, 'r+');
}

function fsyncPath(path: string, flags: 'r' | 'r+'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Sidecar the primary keeps next to the database: its last acknowledged position (for demotion checks). */
export function primarySidecarPath(path: string): string {
  return `${path}.gc-primary.json`;
}
