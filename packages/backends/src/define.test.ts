import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@gc/core';
import { makeTempDir } from '@gc/testkit';
import { describe, expect, it } from 'vitest';
import { defineBackend, isBackendPlugin, mergeOptions } from './define.js';
import { BackendLoadError } from './errors.js';
import { createBackendFromConfig, loadBackend, validateBackendConfig } from './load.js';
import { processBackend } from './process.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

describe('defineBackend', () => {
  it('merges options one level deep over fresh defaults and passes the context', async () => {
    const plugin = (await import('./fixtures/plugin-ok.js')).default;
    expect(isBackendPlugin(plugin)).toBe(true);
    const b = (await plugin.create({ nested: { a: 9 } } as never, { name: 'orders' })) as unknown as {
      name: string;
      options: { greeting: string; nested: { a: number; b: number } };
      logs(): Promise<string[]>;
    };
    expect(b.name).toBe('orders');
    expect(b.options).toEqual({ greeting: 'hello', nested: { a: 9, b: 2 } });
    expect(await b.logs()).toEqual(['hello']);
    expect(plugin.defaults()).toEqual({ greeting: 'hello', nested: { a: 1, b: 2 } });
  });
  it('does not share default objects between instances', () => {
    const p = defineBackend({ name: 'x', options: { list: [1] }, factory: () => ({}) as never });
    p.defaults().list.push(2);
    expect(p.defaults().list).toEqual([1]);
  });
  it('refuses a definition without a factory', () => {
    expect(() => defineBackend({ name: 'x', options: {} } as never)).toThrow(/needs a name and a factory/);
  });
  it('mergeOptions ignores undefined and replaces arrays', () => {
    expect(mergeOptions({ a: 1, b: [1, 2], c: { x: 1 } }, { a: undefined, b: [3], c: { x: 2 } })).toEqual({
      a: 1,
      b: [3],
      c: { x: 2 },
    });
  });
});

describe('loading backends', () => {
  it('returns built-ins by name', async () => {
    expect(await loadBackend('process')).toBe(processBackend);
    expect((await loadBackend('systemd')).name).toBe('systemd');
    expect((await loadBackend('docker')).name).toBe('docker');
  });
  it('loads a plugin module by path and creates it from config', async () => {
    const b = await createBackendFromConfig({
      type: fixture('plugin-ok.ts'),
      name: 'mem',
      options: { greeting: 'hi' },
    });
    expect(b.kind).toBe('memory');
    await b.start();
    expect((await b.health()).healthy).toBe(true);
    expect(await b.logs()).toEqual(['hi']);
    await b.close();
  });
  it('loads a backend by package name from the app directory (lazily, ESM package with an exports map)', async () => {
    const app = await makeTempDir('backends-load');
    const pkg = join(app, 'node_modules', 'gc-backend-echo');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({
        name: 'gc-backend-echo',
        type: 'module',
        exports: { '.': { default: './index.js' } },
      }),
    );
    // A plugin built by another copy of @gc/backends: recognised by the registered symbol, not by identity.
    writeFileSync(
      join(pkg, 'index.js'),
      `globalThis.gcEchoLoaded = true;
export const backend = {
  [Symbol.for('gc.backend-plugin')]: true,
  name: 'echo',
  defaults: () => ({ word: 'hi' }),
  create: async (o = {}) => ({ name: 'echo', kind: 'echo', word: o.word ?? 'hi' }),
};`,
    );
    const g = globalThis as { gcEchoLoaded?: boolean };
    expect(g.gcEchoLoaded).toBeUndefined();
    const plugin = await loadBackend('gc-backend-echo', { resolveFrom: app });
    expect(g.gcEchoLoaded).toBe(true);
    expect(plugin.name).toBe('echo');
    expect(await plugin.create({ word: 'yo' })).toMatchObject({ kind: 'echo', word: 'yo' });
    // Resolution is from the app's directory: elsewhere the same name is not installed.
    await expect(loadBackend('gc-backend-echo', { resolveFrom: join(app, '..') })).rejects.toThrow(
      /not installed/,
    );
  });

  it('names a package that is not installed and says how to add it', async () => {
    const err = await loadBackend('@gc-test/no-such-backend').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendLoadError);
    expect((err as BackendLoadError).packageName).toBe('@gc-test/no-such-backend');
    expect((err as Error).message).toMatch(
      /"@gc-test\/no-such-backend".*not installed.*pnpm add @gc-test\/no-such-backend/,
    );
  });
  it('refuses a module that exports no backend, listing what it exports', async () => {
    await expect(loadBackend(fixture('plugin-bad.ts'))).rejects.toThrow(
      /exports no backend \(found: default, notABackend\).*defineBackend/,
    );
  });
  it('refuses a factory that returns something that is not a Backend', async () => {
    const plugin = await loadBackend(fixture('plugin-broken-factory.ts'));
    await expect(plugin.create()).rejects.toThrow(/without stop, health, status, logs, close/);
  });
  it('reports an import that throws, naming the package', async () => {
    await expect(
      loadBackend(fixture('plugin-ok.ts'), { importer: () => Promise.reject(new Error('boom')) }),
    ).rejects.toThrow(/cannot load backend ".*plugin-ok.ts": importing it failed: boom/);
  });
  it('validates the config section with field paths', () => {
    expect(() => validateBackendConfig(null)).toThrow(ConfigError);
    expect(() => validateBackendConfig({})).toThrow(/backend.type: must be process, systemd, docker/);
    expect(() => validateBackendConfig({ type: 'process', options: [] })).toThrow(
      /backend.options: must be an object/,
    );
    expect(() => validateBackendConfig({ type: 'process', name: 3 })).toThrow(/backend.name/);
    expect(validateBackendConfig({ type: 'docker' })).toEqual({ type: 'docker' });
  });
});
