#!/usr/bin/env node
// Proves the workspace package graph is acyclic and one-way: core -> primitives -> features -> platform
// -> cli. Runtime dependencies (dependencies, peerDependencies) may only point to a lower layer, or,
// between feature packages, to another feature package as long as no cycle forms. Primitives
// (@gc/sqlite) sit between core and the features: they may use core only, and features use them.
// Tooling packages (the testkit) may only be devDependencies. Exits non-zero with every violation listed.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
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

if (errors.length) {
  console.error(`package graph check failed:\n  ${errors.join('\n  ')}`);
  process.exit(1);
}
console.log(`package graph ok: ${pkgs.size} packages, acyclic, one-way`);
