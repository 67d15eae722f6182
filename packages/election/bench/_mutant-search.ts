// Diagnostic: the first seeds that catch a one-line mutant of the election's decision code (election.ts,
// leader.ts, follower.ts, core.ts) while the real code passes them.
// LINE / BECOMES / OPTS (JSON simulation options) / FROM / TO from the environment.
import { loadMutant } from '../src/mutants.js';
import { simulate } from '../src/simulation.js';
const create = await loadMutant('search', process.env.LINE!, process.env.BECOMES ?? '');
const opts = JSON.parse(process.env.OPTS ?? '{}') as object;
let found = 0;
for (let seed = Number(process.env.FROM ?? 1); seed <= Number(process.env.TO ?? 2000) && found < 3; seed++) {
  const r = await simulate({ ...opts, seed, create });
  if (!r.violation) continue;
  const real = await simulate({ ...opts, seed });
  if (!real.violation) {
    found++;
    console.log('caught by', seed, r.violation.invariant);
  }
}
console.log('done');
