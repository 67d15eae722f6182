// Diagnostic: the first seeds that catch a one-line mutant of election.ts while the real code passes them.
// LINE / BECOMES / OPTS (JSON simulation options) / FROM / TO from the environment.
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { simulate } from '../src/simulation.js';
const src = fileURLToPath(new URL('../src/election.ts', import.meta.url));
const file = fileURLToPath(new URL('../src/.mutant-search.ts', import.meta.url));
const source = readFileSync(src, 'utf8');
if (source.split(process.env.LINE!).length !== 2) throw new Error('line not found once');
writeFileSync(file, source.replace(process.env.LINE!, process.env.BECOMES ?? ''));
const mod = (await import(file)) as { createElectionOnStore: never };
rmSync(file);
const opts = JSON.parse(process.env.OPTS ?? '{}') as object;
let found = 0;
for (let seed = Number(process.env.FROM ?? 1); seed <= Number(process.env.TO ?? 2000) && found < 3; seed++) {
  const r = await simulate({ ...opts, seed, create: mod.createElectionOnStore });
  if (!r.violation) continue;
  const real = await simulate({ ...opts, seed });
  if (!real.violation) {
    found++;
    console.log('caught by', seed, r.violation.invariant);
  }
}
console.log('done');
