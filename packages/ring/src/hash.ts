import xxhash from 'xxhash-wasm';
import { InvalidKeyError } from './errors.js';

/** Smallest and largest partition counts. */
export const MIN_PARTITIONS = 1;
export const MAX_PARTITIONS = 16_384;
/** Partitions of a new ring when none is given. */
export const DEFAULT_PARTITIONS = 256;

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasher: Hasher | undefined;
let loading: Promise<Hasher> | undefined;

/**
 * Loads the xxHash WebAssembly module once per process (the `xxhash-wasm` package: about 10 µs; everything
 * after is synchronous). {@link createRing}, the router and {@link loadPartitioner} call it.
 */
export async function loadHasher(): Promise<void> {
  if (hasher) return;
  loading ??= xxhash().then((h) => (hasher = h));
  await loading;
}

function h(): Hasher {
  if (!hasher) throw new Error('@gc/ring: call await loadHasher() first');
  return hasher;
}

/**
 * XXH32 of the UTF-8 bytes of `s` with `seed` (0 … 2^32-1). Synchronous after {@link loadHasher}.
 * A public contract: `partition = floor(XXH32(utf8(key), 0) × partitions / 2^32)` in every language.
 */
export function xxh32(s: string, seed = 0): number {
  return h().h32(s, seed);
}

/** The partition of `key` among `partitions`; throws {@link InvalidKeyError} for a non-string. */
export function partitionOfKey(key: string, partitions: number): number {
  if (typeof key !== 'string') throw new InvalidKeyError(key);
  // Multiply-shift instead of modulo: exact in doubles (2^32 × 2^14 < 2^53) and unbiased across the range.
  return Math.floor((hasher!.h32(key, 0) * partitions) / 4_294_967_296);
}

/** Maps keys to partitions without a ring (tools, tests, other processes). */
export interface Partitioner {
  readonly partitions: number;
  partitionOf(key: string): number;
}

/** A {@link Partitioner} for `partitions` (after loading the hasher). */
export async function loadPartitioner(partitions: number): Promise<Partitioner> {
  await loadHasher();
  return { partitions, partitionOf: (key) => partitionOfKey(key, partitions) };
}
