#!/usr/bin/env node
// Writes oclif.manifest.json after the build, so that `gc <command>` imports only that command's
// module at start-up instead of every command (which costs about a second).
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'oclif.manifest.json');
rmSync(file, { force: true });
const config = await Config.load({ root });
const manifest = config.rootPlugin.manifest;
if (!manifest || Object.keys(manifest.commands).length === 0) {
  console.error('oclif manifest: no commands found in dist/commands (did the build run?)');
  process.exit(1);
}
writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`oclif manifest: ${Object.keys(manifest.commands).length} commands`);
