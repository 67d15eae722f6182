#!/usr/bin/env node
// Proves the workspace package graph is acyclic and one-way: core -> primitives -> features -> platform
// -> cli. Runtime dependencies (dependencies, peerDependencies) may only point to a lower layer, or,
// between feature packages, to another feature package as long as no cycle forms. Primitives
// (@gc/sqlite) sit between core and the features: they may use core only, and features use them.
// Tooling packages (the testkit) may only be devDependencies. Exits non-zero with every violation listed.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const LAYER = { core: 0, primitive: 0.5, feature: 1, platform: 2, app: 3, example: 3, tooling: -1, e2e: 4 };
const PRIMITIVES = new Set(['@gc/sqlite']);

function layerOf(name, dir) {
  if (name === '@gc/core') return 'core';
  if (PRIMITIVES.has(name)) return 'primitive';
  if (name === '@gc/platform') return 'platform';
  if (dir.startsWith('apps/')) return 'app';
  if (dir.startsWith('tooling/')) return 'tooling';
  if (dir.startsWith('examples/')) return 'example';
  if (dir === 'e2e') return 'e2e';
  return 'feature';
}

const pkgs = new Map();
for (const group of ['packages', 'apps', 'tooling', 'examples']) {
  const base = join(root, group);
  if (!existsSync(base)) continue;
  for (const d of readdirSync(base)) {
    const file = join(base, d, 'package.json');
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, 'utf8'));
      pkgs.set(json.name, { json, dir: `${group}/${d}`, layer: layerOf(json.name, `${group}/${d}`) });
    }
  }
}
if (existsSync(join(root, 'e2e/package.json'))) {
  const json = JSON.parse(readFileSync(join(root, 'e2e/package.json'), 'utf8'));
  pkgs.set(json.name, { json, dir: 'e2e', layer: 'e2e' });
}

const errors = [];
const edges = new Map();
for (const [name, p] of pkgs) {
  const runtime = { ...p.json.dependencies, ...p.json.peerDependencies };
  const all = { ...runtime, ...p.json.devDependencies };
  edges.set(
    name,
    Object.keys(all).filter((d) => pkgs.has(d)),
  );
  for (const dep of Object.keys(runtime).filter((d) => pkgs.has(d))) {
    const target = pkgs.get(dep);
    if (target.layer === 'tooling') {
      errors.push(
        `${name} has a runtime dependency on the private tooling package ${dep}; make it a devDependency`,
      );
    } else if (p.layer !== 'tooling' && LAYER[target.layer] > LAYER[p.layer]) {
      errors.push(
        `${name} (${p.layer}) depends on ${dep} (${target.layer}): dependencies must point down (core -> primitives -> features -> platform -> cli)`,
      );
    } else if (p.layer === target.layer && p.layer !== 'feature' && p.layer !== 'example') {
      errors.push(
        `${name} depends on ${dep}, another ${p.layer} package: only feature packages may depend on each other`,
      );
    }
  }
}

// Cycle detection over every workspace edge (dev dependencies included: a cycle there breaks builds).
const state = new Map();
const stack = [];
function visit(n) {
  state.set(n, 1);
  stack.push(n);
  for (const m of edges.get(n) ?? []) {
    if (state.get(m) === 1) errors.push(`cycle: ${[...stack.slice(stack.indexOf(m)), m].join(' -> ')}`);
    else if (!state.has(m)) visit(m);
  }
  stack.pop();
  state.set(n, 2);
}
for (const n of edges.keys()) if (!state.has(n)) visit(n);

// ---- Real imports: what the source files import must match what package.json declares ----
// Runtime files (a package's src/ and bin/, tests and test helpers excepted) may import only their
// dependencies, peer and optional dependencies; other files (tests, benches, configs, scripts) also their
// devDependencies and the root's. A dependency no runtime file imports is unused, and the graph of the
// workspace packages' real runtime imports must obey the same layers and be acyclic.
const rootJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const rootDev = new Set(Object.keys(rootJson.devDependencies ?? {}));
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', 'test-results', '.turbo']);
const SOURCE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;
// Packages a package uses without importing them (binaries, build tools, config-referenced plugins).
const NOT_IMPORTED = new Set(['typescript', 'tsup', 'vitest', 'tsx', 'oclif', 'playwright-core']);

function filesOf(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (SKIP_DIRS.has(e.name) || e.name.startsWith('.')) continue;
      const f = join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) out.push(f);
    }
  };
  walk(dir);
  return out;
}

const BUILTINS = new Set(builtinModules);
/** Bare package names a file imports (static, dynamic, require, require.resolve, type imports). */
function importsOf(text) {
  const names = new Set();
  const code = text.replace(/^\s*(\/\/|\*).*$/gm, '');
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire(?:\.resolve)?\s*\(\s*)(['"])([^'"\n]+)\1/g;
  for (const m of code.matchAll(re)) {
    const spec = m[2];
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || spec.startsWith('#'))
      continue;
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    if (BUILTINS.has(name) || !/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/i.test(name)) continue;
    names.add(name);
  }
  return names;
}

// A package's runtime files: those reachable through relative imports from its entry points (the
// `@gc/source` conditions of its exports, its tsup entries, its bins, the files its scripts run).
function entriesOf(p, dir) {
  const out = [];
  const walkExports = (v) => {
    if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === '@gc/source') out.push(x);
        else walkExports(x);
      }
  };
  walkExports(p.json.exports);
  for (const b of Object.values(typeof p.json.bin === 'string' ? { b: p.json.bin } : (p.json.bin ?? {})))
    out.push(b);
  for (const cmd of Object.values(p.json.scripts ?? {}))
    for (const m of cmd.matchAll(/(\S+\.[cm]?[jt]s)\b/g)) out.push(m[1]);
  const tsup = join(dir, 'tsup.config.ts');
  if (existsSync(tsup)) {
    for (const m of readFileSync(tsup, 'utf8').matchAll(/'(src\/[^'!]+)'/g)) {
      const spec = m[1];
      if (!spec.includes('*')) out.push(spec);
      else {
        const base = join(dir, spec.slice(0, spec.indexOf('*')));
        if (existsSync(base))
          for (const f of filesOf(base)) if (!/\.test\.ts$/.test(f)) out.push(f.slice(dir.length + 1));
      }
    }
  }
  if (p.layer === 'example') out.push('index.ts'); // an example is its index.ts
  return out.map((e) => join(dir, e)).filter((f) => existsSync(f));
}

function resolveRelative(from, spec) {
  const base = join(dirname(from), spec);
  const stem = base.replace(/\.[cm]?js$/, '');
  for (const c of [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${base}.ts`, join(base, 'index.ts')])
    if (existsSync(c) && SOURCE.test(c)) return c;
  return undefined;
}

function runtimeFilesOf(p, dir) {
  const seen = new Set();
  const todo = entriesOf(p, dir);
  while (todo.length) {
    const f = todo.pop();
    if (seen.has(f)) continue;
    seen.add(f);
    const code = readFileSync(f, 'utf8');
    for (const m of code.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)(['"])(\.{1,2}\/[^'"\n]+)\1/g,
    )) {
      const r = resolveRelative(f, m[2]);
      if (r && !r.includes('/node_modules/')) todo.push(r);
    }
  }
  return seen;
}

// Imports the regular expressions above cannot tell apart, with the reason.
const ALLOWED = {
  '@gc/wal': {
    tsx: 'the capture worker registers tsx only when @gc/wal runs from its TypeScript sources (tests, gc dev)',
  },
  '@gc/sqlite': {
    'better-sqlite3-napi': 'loaded by name at run time (createRequire) when Node-API >= 10',
    'better-sqlite3': 'loaded by name at run time (createRequire) when Node-API < 10',
  },
};

const importEdges = new Map();
let scanned = 0;
for (const [name, p] of pkgs) {
  const deps = new Set([
    ...Object.keys(p.json.dependencies ?? {}),
    ...Object.keys(p.json.peerDependencies ?? {}),
    ...Object.keys(p.json.optionalDependencies ?? {}),
  ]);
  const dev = new Set(Object.keys(p.json.devDependencies ?? {}));
  const used = new Set();
  const runtimeUsed = new Set();
  const dir = join(root, p.dir);
  const runtimeFiles = runtimeFilesOf(p, dir);
  const allowed = ALLOWED[name] ?? {};
  for (const dep of Object.keys(allowed)) if (deps.has(dep)) runtimeUsed.add(dep);
  for (const file of filesOf(dir)) {
    scanned++;
    const rel = file.slice(dir.length + 1);
    const runtime = runtimeFiles.has(file);
    for (const dep of importsOf(readFileSync(file, 'utf8'))) {
      if (dep === name || allowed[dep]) continue;
      used.add(dep);
      if (runtime) runtimeUsed.add(dep);
      if (runtime && !deps.has(dep)) {
        errors.push(
          `${p.dir}/${rel} imports ${dep}, which ${name} does not declare in dependencies${dev.has(dep) ? ' (only in devDependencies)' : ''}`,
        );
      } else if (!runtime && !deps.has(dep) && !dev.has(dep) && !rootDev.has(dep)) {
        errors.push(`${p.dir}/${rel} imports ${dep}, which neither ${name} nor the root declares`);
      }
    }
  }
  for (const dep of deps) {
    if (!runtimeUsed.has(dep) && !NOT_IMPORTED.has(dep) && !dep.startsWith('@types/'))
      errors.push(
        `${name} declares ${dep} in dependencies but no runtime file imports it${used.has(dep) ? ' (only tests or tools do: make it a devDependency)' : ''}`,
      );
  }
  for (const dep of dev) {
    if (!used.has(dep) && !NOT_IMPORTED.has(dep) && !dep.startsWith('@types/') && !rootDev.has(dep))
      errors.push(`${name} declares ${dep} in devDependencies but nothing in it imports it`);
  }
  importEdges.set(
    name,
    [...runtimeUsed].filter((d) => pkgs.has(d)),
  );
}
state.clear();
function visitImports(n) {
  state.set(n, 1);
  stack.push(n);
  for (const m of importEdges.get(n) ?? []) {
    if (state.get(m) === 1)
      errors.push(`import cycle: ${[...stack.slice(stack.indexOf(m)), m].join(' -> ')}`);
    else if (!state.has(m)) visitImports(m);
  }
  stack.pop();
  state.set(n, 2);
}
for (const n of importEdges.keys()) if (!state.has(n)) visitImports(n);

if (errors.length) {
  console.error(`package graph check failed:\n  ${errors.join('\n  ')}`);
  process.exit(1);
}
console.log(
  `package graph ok: ${pkgs.size} packages, acyclic, one-way; ${scanned} source files' imports match their package.json`,
);
