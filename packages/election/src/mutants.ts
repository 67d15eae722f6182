// Planted bugs (R16): copies of the election's decision code with one line changed, loaded for
// simulation.test.ts and bench/_mutant-search.ts. A test facility, exported from nowhere.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CreateOnStore } from './simulation.js';

/** The election's decision code: election.ts extends leader.ts, which extends follower.ts, which extends core.ts. */
const FILES = ['election', 'leader', 'follower', 'core'];

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Writes copies of the decision files next to them as `.mutant-<name>.<file>.ts` (git-ignored), `line`
 * replaced by `becomes` in the one that holds it and their imports of each other pointing at the copies;
 * imports the copy of election.ts and removes the copies again. Throws unless `line` occurs exactly once in
 * those files.
 */
export async function loadMutant(name: string, line: string, becomes: string): Promise<CreateOnStore> {
  const sources = FILES.map((f) => readFileSync(here(`./${f}.ts`), 'utf8'));
  const at = sources.reduce((n, s) => n + s.split(line).length - 1, 0);
  if (at !== 1) {
    const where = FILES.map((f) => `${f}.ts`).join(', ');
    throw new Error(`mutant ${name}: the line to change occurs ${at} times in ${where}`);
  }
  const copy = (f: string) => `.mutant-${name}.${f}`;
  const written: string[] = [];
  try {
    FILES.forEach((f, i) => {
      let source = sources[i]!.replace(line, () => becomes);
      for (const g of FILES) source = source.replaceAll(`from './${g}.js'`, `from './${copy(g)}.js'`);
      const file = here(`./${copy(f)}.ts`);
      written.push(file);
      writeFileSync(file, source);
    });
    const mod = (await import(/* @vite-ignore */ `./${copy('election')}.ts`)) as {
      createElectionOnStore: CreateOnStore;
    };
    return mod.createElectionOnStore;
  } finally {
    for (const file of written) rmSync(file, { force: true });
  }
}
