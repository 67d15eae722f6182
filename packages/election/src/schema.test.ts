import { ConfigError } from '@gc/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { resolveElectionOptions } from './options.js';
import { electionConfigSchema, type ElectionConfig } from './schema.js';
import type { ElectionOptions } from './types.js';

describe('electionConfigSchema', () => {
  it('accepts the configurable timings and switches, and its output fits the election options', () => {
    const c = electionConfigSchema.parse({ ttlMs: 5000, fastFailover: true, fastFailoverProbes: 3 });
    expect(c).toEqual({ ttlMs: 5000, fastFailover: true, fastFailoverProbes: 3 });
    expect(electionConfigSchema.parse({})).toEqual({});
    expectTypeOf<ElectionConfig>().toExtend<Partial<ElectionOptions>>();
  });

  it('refuses unknown keys, wrong types and values out of range', () => {
    expect(electionConfigSchema.safeParse({ ttl: 3000 }).success).toBe(false);
    expect(electionConfigSchema.safeParse({ ttlMs: '3000' }).success).toBe(false);
    expect(electionConfigSchema.safeParse({ fastFailoverProbes: 11 }).success).toBe(false);
    expect(electionConfigSchema.safeParse({ cooldownMs: -1 }).success).toBe(false);
    // Functions and names are not configuration.
    expect(electionConfigSchema.safeParse({ nodeId: 'n1' }).success).toBe(false);
  });

  it('is what resolveElectionOptions checks the fields with: the error names the field, the value and what is allowed', () => {
    const refused = (over: Record<string, unknown>) => {
      try {
        resolveElectionOptions({ bucket: 'b', nodeId: 'n1', ...over });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error('accepted');
    };
    const e = refused({ observeOnly: 'yes' });
    expect(e.path).toBe('election.observeOnly');
    expect(e.message).toBe('election.observeOnly: must be true or false, got "yes"');
    expect(refused({ fastFailoverProbes: 11 }).message).toMatch(
      /fastFailoverProbes: must be an integer in \[1, 10\], got 11/,
    );
    expect(refused({ pollIntervalMs: 0 }).message).toMatch(/pollIntervalMs: must be an integer ≥ 1, got 0/);
  });
});
