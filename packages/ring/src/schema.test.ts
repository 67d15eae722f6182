import { ConfigError } from '@gc/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { resolveRingOptions } from './options.js';
import { ringConfigSchema, type RingConfig } from './schema.js';
import type { RingOptions } from './types.js';

describe('ringConfigSchema', () => {
  it('accepts the configurable settings, and its output fits the ring options', () => {
    expect(ringConfigSchema.parse({ partitions: 64, weight: 2.5, replicas: 3 })).toEqual({
      partitions: 64,
      weight: 2.5,
      replicas: 3,
    });
    expectTypeOf<RingConfig>().toExtend<Partial<RingOptions>>();
  });

  it('refuses unknown keys, wrong types and values out of range', () => {
    for (const bad of [
      { partition: 64 },
      { partitions: 0 },
      { partitions: 16_385 },
      { weight: 0 },
      { weight: 1001 },
      { ttlMs: 299 },
      { maxHeldCalls: 0 },
      { replicas: 2 },
      { settleMs: '200' },
    ])
      expect(ringConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });

  it('is what resolveRingOptions checks the fields with: the error names the field, the value and what is allowed', () => {
    const refused = (over: Record<string, unknown>) => {
      try {
        resolveRingOptions({ platform: 'p', app: 'a', nodeId: 'n1', ...over });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error('accepted');
    };
    const e = refused({ partitions: 0 });
    expect(e.path).toBe('ring.partitions');
    expect(e.message).toBe('ring.partitions: must be an integer in [1, 16384], got 0');
    expect(refused({ weight: 'heavy' }).message).toMatch(
      /ring\.weight: must be a number in \(0, 1000\], got "heavy"/,
    );
    expect(refused({ replicas: 2 }).message).toMatch(/ring\.replicas: must be one of 1, 3, 5, got 2/);
  });
});
