/**
 * A seeded PRNG (mulberry32): a function returning floats in [0, 1), the same sequence for the same
 * seed on every machine. {@link Rng} builds on it.
 *
 * @example
 * const rnd = seededRandom(Number(process.env.GC_SEED ?? 1));
 * const delayMs = Math.floor(rnd() * 100);
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Seeded randomness for simulations and seeded workloads (mulberry32): small, fast, good enough to explore
 * schedules; the same seed gives the same sequence on every machine.
 *
 * @example
 * const rng = new Rng(42);
 * const op = rng.weighted({ commit: 3, crash: 1 });
 */
export class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = seededRandom(seed ^ 0x9e3779b9);
  }
  /** A float in [0, 1). */
  next(): number {
    return this.#next();
  }
  /** A float in [a, b). */
  float(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  /** An integer in [a, b]. */
  int(a: number, b: number): number {
    return a + Math.floor(this.next() * (b - a + 1));
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** A key, with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as Array<[K, number]>;
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1]![0];
  }
}
