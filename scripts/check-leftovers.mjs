#!/usr/bin/env node
// After the suite: no nats-server or test child may survive, and no testkit temp dir may be left.
// The testkit names everything it creates with the "gc-testkit-<run>-" prefix; pass it to check one run
// (default: every run's).
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const prefix = process.argv[2] ?? 'gc-testkit-';
const leftovers = [];
for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)) {
  let cmd = '';
  let environ = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    continue;
  }
  if (cmd.includes(prefix) || environ.includes(`GC_TESTKIT_CHILD=${prefix}`))
    leftovers.push(`process ${pid}: ${cmd.slice(0, 160)}`);
}
for (const d of readdirSync(tmpdir())) if (d.startsWith(prefix)) leftovers.push(`temp dir ${tmpdir()}/${d}`);
if (leftovers.length) {
  console.error(`the test run left things behind:\n  ${leftovers.join('\n  ')}`);
  process.exit(1);
}
console.log('no nats-server process, test child or testkit temp dir survived the run');
