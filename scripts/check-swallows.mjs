#!/usr/bin/env node
// Every place in runtime code that swallows an error says why. A swallow is `.catch(() => undefined)`
// (or an empty arrow), a `catch` block that neither rethrows, logs, reports nor returns a value, or an
// empty rejection handler. Each must name the case it handles in a comment on its line, the line before,
// or inside the block ("the consumer is gone already: it expires by itself"); the rest either handles
// the error (logger, audit, metrics, an event) or rethrows it. Exits non-zero with every unexplained
// site listed as file:line. Test files and test helpers are not checked.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function* sources(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist' || name === 'test') continue;
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|mts)$/.test(name) && !/\.(test|e2e\.test)\.ts$/.test(name) && !name.endsWith('.d.ts'))
      yield p;
  }
}

const EMPTY_ARROW = /\.catch\(\s*\(\s*[_a-z]*\s*\)\s*=>\s*(undefined|\{\s*\}|null|void 0)\s*\)/;
const EMPTY_HANDLER = /,\s*\(\s*[_a-z]*\s*\)\s*=>\s*(undefined|\{\s*\})\s*,?\s*(\/\/.*)?$/;
const CATCH = /\bcatch\s*(\(\s*[_a-zA-Z]*\s*\))?\s*\{/;
const HANDLES =
  /\b(throw|return|logger|log\.|\.warn\(|\.error\(|\.info\(|\.debug\(|emit\(|audit|metrics?\.|reject\(|console\.)/;

const problems = [];
for (const group of ['packages', 'apps']) {
  const base = join(root, group);
  if (!existsSync(base)) continue;
  for (const pkg of readdirSync(base)) {
    const src = join(base, pkg, 'src');
    if (!existsSync(src)) continue;
    for (const file of sources(src)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      const commented = (i) =>
        /\/\/|\/\*|^\s*\*/.test(lines[i] ?? '') || /\/\/|\*\/\s*$/.test(lines[i - 1] ?? '');
      lines.forEach((line, i) => {
        const where = `${relative(root, file)}:${i + 1}`;
        if ((EMPTY_ARROW.test(line) || EMPTY_HANDLER.test(line)) && !commented(i)) problems.push(where);
        const m = CATCH.exec(line);
        if (!m || line.includes('.catch(')) return;
        // The block: from the brace to its match (catch blocks are short).
        let depth = 0;
        const body = [];
        for (let j = i; j < lines.length; j++) {
          const text = j === i ? line.slice(m.index + m[0].length - 1) : lines[j];
          for (const ch of text) {
            if (ch === '{') depth++;
            else if (ch === '}') depth--;
          }
          body.push(j === i ? text : lines[j]);
          if (depth <= 0) break;
        }
        const block = body.join('\n');
        if (HANDLES.test(block) || /\/\/|\/\*/.test(block) || commented(i)) return;
        // Assignments or calls in the block do something with the failure (a fallback value, a retry).
        if (/[^=!<>]=[^=>]|\w\(/.test(block.replace(/^\s*\{/, ''))) return;
        problems.push(where);
      });
    }
  }
}

if (problems.length) {
  console.error(
    `${problems.length} place(s) swallow an error without saying why; name the case in a comment, or handle, report or rethrow it:`,
  );
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log('every swallowed error names its case');
