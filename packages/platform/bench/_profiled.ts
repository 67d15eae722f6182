// Runs the gc CLI under `node --cpu-prof` (not allowed in NODE_OPTIONS) and outlives it, so a
// diagnostic can profile a node it spawns: PROFILE_DIR=<dir> <tsx> _profiled.ts <cli args…>
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../../apps/cli/bin/run.js', import.meta.url));
const child = spawn(
  process.execPath,
  ['--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE_DIR ?? '.'}`, bin, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
// A group kill reaches the child too; a second SIGTERM would end it before it writes its profile.
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => undefined);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
