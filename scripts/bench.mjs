#!/usr/bin/env node
// `pnpm bench <name>` runs one benchmark, `pnpm bench all` runs every one, `pnpm bench list` lists them.
// A benchmark is a file `bench/<name>.ts` in any workspace package; it measures gc and its baseline in
// the same run and prints one JSON line last: {"bench":"<name>", ..., "ratio":…, "bar":…, "pass":…}.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const benches = new Map();
for (const group of ['packages', 'apps', 'tooling', 'e2e']) {
  const base = join(root, group);
  if (!existsSync(base)) continue;
  const dirs = group === 'e2e' ? [base] : readdirSync(base).map((d) => join(base, d));
  for (const d of dirs) {
    const b = join(d, 'bench');
    if (!existsSync(b)) continue;
    for (const f of readdirSync(b))
      if (f.endsWith('.ts') && !f.startsWith('_')) benches.set(basename(f, '.ts'), join(b, f));
  }
}

const name = process.argv[2];
if (!name || name === 'list') {
  console.log(
    `usage: pnpm bench <name>|all|list\nbenchmarks: ${[...benches.keys()].sort().join(', ') || '(none yet)'}`,
  );
  process.exit(name ? 0 : 2);
}
const selected = name === 'all' ? [...benches.keys()].sort() : [name];
const tsx = pathToFileURL(createRequire(join(root, 'tooling/testkit/package.json')).resolve('tsx')).href;
let failed = 0;
for (const n of selected) {
  const file = benches.get(n);
  if (!file) {
    console.error(`unknown benchmark "${n}"; known: ${[...benches.keys()].sort().join(', ')}`);
    process.exit(2);
  }
  console.error(`== bench ${n} (${file.slice(root.length + 1)})`);
  const r = spawnSync(
    process.execPath,
    ['--conditions=@gc/source', '--import', tsx, file, ...process.argv.slice(3)],
    {
      stdio: 'inherit',
      env: { ...process.env, GC_LOG_LEVEL: process.env.GC_LOG_LEVEL ?? 'warn' },
    },
  );
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
