#!/usr/bin/env node
// Prints vitest's JSON result as one plain closing line: "<label>: N passed, N failed, N skipped".
import { readFileSync, existsSync } from 'node:fs';
const [file, label = 'tests'] = process.argv.slice(2);
if (!file || !existsSync(file)) {
  console.log(`${label}: 0 passed, 1 failed (no result file: the test run did not finish)`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(
  `\n${label.replace(/\s+/g, '-')}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`,
);
