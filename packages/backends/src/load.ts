import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkConfig } from '@gc/core';
import { isBackendPlugin, type BackendPlugin } from './define.js';
import { dockerBackend } from './docker.js';
import { BackendLoadError } from './errors.js';
import { processBackend } from './process.js';
import { backendConfigSchema } from './schema.js';
import { systemdBackend } from './systemd.js';
import type { Backend, BackendContext } from './types.js';

/** The backends that ship with `@gc/backends`, by kind name. */
export const builtinBackends: Readonly<Record<string, BackendPlugin<object>>> = Object.freeze({
  process: processBackend,
  systemd: systemdBackend,
  docker: dockerBackend,
});

/** Options of {@link loadBackend}. */
export interface LoadBackendOptions {
  /** Directory package names are resolved from (the app's). Default `process.cwd()`. */
  resolveFrom?: string;
  /** Imports a resolved module; replaceable for bundlers. Default dynamic `import()`. */
  importer?: (specifier: string) => Promise<unknown>;
}

function resolveSpecifier(spec: string, from: string): string {
  if (spec.startsWith('file:')) return spec;
  if (isAbsolute(spec)) return pathToFileURL(spec).href;
  const require = createRequire(join(from, 'package.json'));
  return pathToFileURL(require.resolve(spec)).href;
}

/**
 * Loads a backend kind: a built-in name (`process`, `systemd`, `docker`), a package name whose
 * module exports a {@link BackendPlugin} as `default` or `backend`, or a file path/URL. The
 * import happens only here (lazily). Errors are {@link BackendLoadError}s that name the package.
 */
export async function loadBackend(
  spec: string,
  opts: LoadBackendOptions = {},
): Promise<BackendPlugin<object>> {
  if (!spec)
    throw new BackendLoadError(
      spec,
      'no backend type given (use process, systemd, docker or a package name)',
    );
  const builtin = builtinBackends[spec];
  if (builtin) return builtin;
  const importer = opts.importer ?? ((s: string) => import(s) as Promise<unknown>);
  let url: string;
  try {
    url = resolveSpecifier(spec, opts.resolveFrom ?? process.cwd());
  } catch (err) {
    throw new BackendLoadError(
      spec,
      `the package is not installed where gc runs (${opts.resolveFrom ?? process.cwd()}): add it (pnpm add ${spec}) or fix the backend type in the config`,
      { cause: err },
    );
  }
  let mod: unknown;
  try {
    mod = await importer(url);
  } catch (err) {
    throw new BackendLoadError(spec, `importing it failed: ${(err as Error).message}`, { cause: err });
  }
  const m = mod as Record<string, unknown>;
  const candidate = [m.default, m.backend, (m.default as Record<string, unknown> | undefined)?.default].find(
    isBackendPlugin,
  );
  if (!candidate) {
    const exportsList = Object.keys(m).sort().join(', ') || 'nothing';
    throw new BackendLoadError(
      spec,
      `it exports no backend (found: ${exportsList}); export the result of defineBackend({ name, options, factory }) from @gc/backends as default or as \`backend\``,
    );
  }
  return candidate;
}

/** The `backend:` section of an app's config. */
export interface BackendConfig {
  /** `process`, `systemd`, `docker`, or a package name. */
  type: string;
  /** Instance name. Default the app name given to {@link createBackendFromConfig}, else the type. */
  name?: string;
  /** Options of that backend kind. */
  options?: Record<string, unknown>;
}

/**
 * Checks a parsed `backend:` config section with {@link backendConfigSchema}; throws ConfigError naming the
 * field, its value and what is allowed.
 */
export function validateBackendConfig(value: unknown, path = 'backend'): BackendConfig {
  return checkConfig(backendConfigSchema, value, path);
}

/**
 * Loads the backend kind named in `config` and creates an instance.
 *
 * @example
 * const backend = await createBackendFromConfig({ type: 'process', options: { command: 'node', args: ['server.js'] } });
 */
export async function createBackendFromConfig(
  config: unknown,
  context: Partial<BackendContext> = {},
  opts: LoadBackendOptions = {},
): Promise<Backend> {
  const c = validateBackendConfig(config);
  const plugin = await loadBackend(c.type, opts);
  return plugin.create(c.options ?? {}, { ...context, name: c.name ?? context.name ?? c.type });
}
