import { mkdirSync, openSync, closeSync, fsyncSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { FencedError } from './errors.js';

/**
 * A fencing epoch: a positive safe integer that strictly increases with every leadership grant.
 * Every write a leader makes carries its epoch; resources refuse writes with an epoch lower than
 * the highest they have seen.
 */
export type Epoch = number;

/** Header name that carries an epoch on NATS messages. */
export const EPOCH_HEADER = 'Gc-Epoch';

/** Durable storage of the highest epoch a node has seen, so epochs never go backwards across restarts. */
export interface EpochStore {
  /** The highest epoch stored, or 0. */
  load(): Epoch;
  /** Stores `epoch` durably if it is higher than the stored one. */
  save(epoch: Epoch): void;
}

/** Keeps the highest epoch in memory only (tests, observers). */
export function memoryEpochStore(initial: Epoch = 0): EpochStore {
  let v = initial;
  return {
    load: () => v,
    save: (e) => {
      if (e > v) v = e;
    },
  };
}

/**
 * Keeps the highest epoch in a small file, written atomically (write temp, fsync, rename) so a crash
 * never leaves a torn or lower value.
 */
export function fileEpochStore(path: string): EpochStore {
  let cached: Epoch | undefined;
  const load = (): Epoch => {
    if (cached !== undefined) return cached;
    try {
      const n = Number(readFileSync(path, 'utf8').trim());
      cached = Number.isSafeInteger(n) && n > 0 ? n : 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      cached = 0;
    }
    return cached;
  };
  return {
    load,
    save(epoch) {
      if (epoch <= load()) return;
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.tmp`;
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, `${epoch}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      cached = epoch;
    },
  };
}

/** Throws RangeError unless `epoch` is a positive safe integer. */
export function assertEpoch(epoch: unknown, what = 'epoch'): asserts epoch is Epoch {
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${String(epoch)}`);
  }
}

/** Parses an epoch from a header value; undefined when absent or malformed. */
export function parseEpoch(value: string | undefined | null): Epoch | undefined {
  if (!value) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * Guards a resource with fencing: remembers the highest epoch seen and refuses anything lower.
 * Used by every resource a leader writes (WAL stream, locks, RPC to singletons, VIP, backends).
 *
 * @example
 * const fence = createFence();
 * fence.check(7, 'wal append'); // ok, highest is now 7
 * fence.check(6, 'wal append'); // throws FencedError
 */
export interface Fence {
  /** The highest epoch seen so far (0 before any). */
  highest(): Epoch;
  /** Records `epoch` as seen; returns true when it raised the highest. */
  observe(epoch: Epoch): boolean;
  /** True when `epoch` is at least the highest seen (and records it). */
  admit(epoch: Epoch): boolean;
  /** Like {@link Fence.admit} but throws {@link FencedError} naming `what` when refused. */
  check(epoch: Epoch, what: string): void;
}

/** Creates a {@link Fence}, optionally backed by an {@link EpochStore} so it survives restarts. */
export function createFence(store: EpochStore = memoryEpochStore()): Fence {
  let highest = store.load();
  const observe = (epoch: Epoch): boolean => {
    assertEpoch(epoch);
    if (epoch <= highest) return false;
    highest = epoch;
    store.save(epoch);
    return true;
  };
  return {
    highest: () => highest,
    observe,
    admit(epoch) {
      assertEpoch(epoch);
      if (epoch < highest) return false;
      observe(epoch);
      return true;
    },
    check(epoch, what) {
      assertEpoch(epoch);
      if (epoch < highest) throw new FencedError(what, epoch, highest);
      observe(epoch);
    },
  };
}
