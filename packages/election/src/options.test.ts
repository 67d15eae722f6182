import { ConfigError, FakeClock } from '@gc/core';
import { describe, expect, it } from 'vitest';
import { defaultElectionOptions, resolveElectionOptions } from './options.js';

const base = { bucket: 'b', nodeId: 'n1' };

describe('election options', () => {
  it('defaults to TTL 3 s, renew every 1 s, demote after 2 s, poll 250 ms, cooldown 1 s', () => {
    const o = resolveElectionOptions(base);
    expect(o).toMatchObject({
      key: 'leader',
      ttlMs: 3000,
      renewIntervalMs: 1000,
      renewDeadlineMs: 2000,
      pollIntervalMs: 250,
      cooldownMs: 1000,
      priority: 10,
      observeOnly: false,
      fastFailover: false,
      replicas: 1,
      opTimeoutMs: 500,
    });
    expect(defaultElectionOptions().ttlMs).toBe(3000);
  });

  it('derives the other timings from a given ttlMs', () => {
    const o = resolveElectionOptions({ ...base, ttlMs: 900 });
    expect(o).toMatchObject({
      renewIntervalMs: 300,
      renewDeadlineMs: 600,
      pollIntervalMs: 75,
      cooldownMs: 300,
    });
  });

  it('keeps explicit values, and takes cooldown and op timeout from an explicit renew interval', () => {
    const clock = new FakeClock();
    const o = resolveElectionOptions({
      ...base,
      ttlMs: 5000,
      renewIntervalMs: 500,
      renewDeadlineMs: 2500,
      clock,
    });
    expect(o).toMatchObject({
      renewIntervalMs: 500,
      renewDeadlineMs: 2500,
      cooldownMs: 500,
      opTimeoutMs: 250,
    });
    expect(o.clock).toBe(clock);
  });

  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    [
      'renew interval not below the deadline',
      { renewIntervalMs: 2000, renewDeadlineMs: 2000 },
      'election.renewIntervalMs',
      /rule renewIntervalMs < renewDeadlineMs/,
    ],
    [
      'deadline not below the TTL',
      { renewIntervalMs: 1000, renewDeadlineMs: 3000 },
      'election.renewDeadlineMs',
      /rule renewDeadlineMs < ttlMs broken.*two leaders/,
    ],
    [
      'deadline too close to the TTL',
      { renewIntervalMs: 1000, renewDeadlineMs: 2900 },
      'election.renewDeadlineMs',
      /rule ttlMs \/ renewDeadlineMs ≥ 1.1/,
    ],
    ['TTL too small', { ttlMs: 50 }, 'election.ttlMs', /integer in \[100/],
    [
      'poll slower than the TTL',
      { pollIntervalMs: 5000 },
      'election.pollIntervalMs',
      /rule pollIntervalMs ≤ ttlMs/,
    ],
    [
      'op timeout beyond the deadline',
      { opTimeoutMs: 2500 },
      'election.opTimeoutMs',
      /rule opTimeoutMs ≤ renewDeadlineMs/,
    ],
    ['priority out of range', { priority: 11 }, 'election.priority', /\[0, 10\]/],
    ['fractional timings', { renewIntervalMs: 10.5 }, 'election.renewIntervalMs', /integer/],
    ['replicas 2', { replicas: 2 }, 'election.replicas', /1, 3 or 5/],
    ['bad node id', { nodeId: 'a b' }, 'election.bucket/key/nodeId', /node id/],
    ['bad key', { key: 'a.*' }, 'election.bucket/key/nodeId', /key/],
  ];
  for (const [what, over, path, msg] of bad) {
    it(`refuses ${what} and names the rule`, () => {
      let err: unknown;
      try {
        resolveElectionOptions({ ...base, ...over });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).path).toBe(path);
      expect((err as ConfigError).code).toBe('GC_INVALID_CONFIG');
      expect((err as Error).message).toMatch(msg);
    });
  }
});
