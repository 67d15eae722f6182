import { ConfigError } from '@gc/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { validateBackendConfig, type BackendConfig } from './load.js';
import { backendConfigSchema } from './schema.js';
import type { z } from 'zod';

describe('backendConfigSchema', () => {
  it('accepts a type, a name and options, and its output is a BackendConfig', () => {
    const c = backendConfigSchema.parse({ type: 'process', name: 'web', options: { command: 'node' } });
    expect(c).toEqual({ type: 'process', name: 'web', options: { command: 'node' } });
    expectTypeOf<z.output<typeof backendConfigSchema>>().toExtend<BackendConfig>();
  });

  it('refuses unknown keys, an empty type and options that are not an object', () => {
    for (const bad of [
      { kind: 'process' },
      { type: '' },
      { type: 'process', options: 'x' },
      { type: 'a', x: 1 },
    ])
      expect(backendConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });

  it('is what validateBackendConfig checks with: the error names the field, the value and what is allowed', () => {
    let err: unknown;
    try {
      validateBackendConfig({ type: 'process', command: 'node' }, 'apps.web.backend');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toBe('apps.web.backend');
    expect((err as Error).message).toBe(
      'apps.web.backend: unknown key "command"; allowed keys: type, name, options',
    );
  });
});
