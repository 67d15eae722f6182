// What the deterministic simulation tests (R16) share: the seeds to run, from the environment, and the
// shape of a planted bug.

/** Which seeds a simulation test runs (see {@link simulationSeeds}). */
export interface SimulationSeeds {
  /** `GC_LONG_TESTS=1`: the long run. */
  long: boolean;
  /** `GC_SEED=<n>`: replay seed n alone (and print its trace) instead of the runs. */
  replay: number | undefined;
  /** How many seeds the runs check: `GC_SIM_SEEDS`, else 5000 in the long run, else 500. */
  seeds: number;
}

/**
 * The seeds of a simulation test from the environment: `GC_SEED=<n>` replays one seed,
 * `GC_LONG_TESTS=1` checks 5000 seeds instead of 500, `GC_SIM_SEEDS=<n>` sets the count.
 *
 * @example
 * const { replay, seeds } = simulationSeeds();
 */
export function simulationSeeds(env: NodeJS.ProcessEnv = process.env): SimulationSeeds {
  const long = env.GC_LONG_TESTS === '1';
  return {
    long,
    replay: env.GC_SEED === undefined ? undefined : Number(env.GC_SEED),
    seeds: Number(env.GC_SIM_SEEDS ?? (long ? 5000 : 500)),
  };
}

/**
 * A planted bug: a copy of the code under test with one line changed, which the simulation must catch
 * (a violated invariant) within `within` seeds.
 */
export interface PlantedBug<O> {
  /** Short name (`GC_SIM_MUTANT=<name>` replays it). */
  name: string;
  /** What the changed line does wrong. */
  what: string;
  /** The line as the code has it (it must occur exactly once). */
  line: string;
  /** What it becomes in the copy. */
  becomes: string;
  /** How many seeds the simulation may need to find a violation. */
  within: number;
  /** Simulation options other than the defaults this bug needs (the real code is checked with them too). */
  options?: Partial<O>;
}
