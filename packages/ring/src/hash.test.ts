import { PerformanceObserver } from 'node:perf_hooks';
import { realClock, silentLogger } from '@gc/core';
import { describe, expect, it } from 'vitest';
import { RingErrorCode } from './errors.js';
import { loadHasher, loadPartitioner, partitionOfKey, xxh32 } from './hash.js';
import { ringMetrics } from './metrics.js';
import { ringNames } from './records.js';
import { RingView } from './view.js';

await loadHasher();

describe('key → partition (a public contract)', () => {
  it('is XXH32 of the UTF-8 bytes, seed 0 (reference vectors)', () => {
    expect(xxh32('', 0)).toBe(0x02cc5d05);
    expect(xxh32('abc', 0)).toBe(0x32d153ff);
    expect(xxh32('Nobody inspects the spammish repetition', 0)).toBe(0xe2293b2f);
  });

  it('maps keys with floor(hash × partitions / 2^32), stable across calls and spread evenly', async () => {
    const part = await loadPartitioner(256);
    expect(part.partitionOf('abc')).toBe(Math.floor((0x32d153ff * 256) / 2 ** 32));
    expect(part.partitionOf('user:42')).toBe(partitionOfKey('user:42', 256));
    const counts = new Array<number>(64).fill(0);
    for (let i = 0; i < 64_000; i++) counts[partitionOfKey(`k${i}`, 64)]!++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    expect(partitionOfKey('ünïcödé 🎉', 256)).toBe(Math.floor((xxh32('ünïcödé 🎉', 0) * 256) / 2 ** 32));
  });

  it('refuses keys that are not strings with a typed error', () => {
    for (const bad of [1, null, undefined, {}, new Uint8Array(2)]) {
      expect(() => partitionOfKey(bad as never, 8)).toThrow(
        expect.objectContaining({ code: RingErrorCode.InvalidKey }),
      );
    }
  });

  it('looks owners up without allocating (no garbage collections over millions of lookups)', async () => {
    const view = new RingView({
      names: ringNames('t', 'alloc'),
      partitions: 256,
      clock: realClock,
      logger: silentLogger,
      holdTimeoutMs: 1000,
      maxHeldCalls: 0,
      metrics: ringMetrics(undefined, { platform: 't', app: 'alloc', node: 'x' }),
    });
    for (let p = 0; p < 256; p++)
      view.applyRecord(
        p,
        { v: 1, owner: `n${p % 5}`, instance: 'i', epoch: 1, state: 'owned', at: 0 },
        p + 1,
      );
    const keys = Array.from({ length: 1000 }, (_, i) => `user:${i}:session`);
    let sink = 0;
    for (let i = 0; i < 200_000; i++) sink += view.ownerOf(keys[i % 1000]!)!.length; // warm up (JIT)
    let gcs = 0;
    const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    obs.observe({ entryTypes: ['gc'] });
    const N = 5_000_000;
    for (let i = 0; i < N; i++) sink += view.ownerOf(keys[i % 1000]!)!.length;
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    expect(sink).toBeGreaterThan(0);
    // 32 bytes per lookup would be 160 MB: at least ten young-generation collections.
    expect(gcs).toBeLessThanOrEqual(4);
    view.close();
  });
});
