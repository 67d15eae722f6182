import type { Options } from 'tsup';

/**
 * The one build configuration every package reuses: ESM only, Node 20 target, declarations,
 * source maps. Packages pass their entry points and, rarely, an override.
 */
export function packageBuild(overrides: Options = {}): Options {
  return {
    entry: ['src/index.ts'],
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: false,
    treeshake: true,
    ...overrides,
  };
}
