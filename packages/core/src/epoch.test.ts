import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFence, fileEpochStore, memoryEpochStore, parseEpoch } from './epoch.js';
import { FencedError } from './errors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('Fence', () => {
  it('admits equal or higher epochs and refuses lower ones', () => {
    const f = createFence();
    f.check(3, 'write');
    f.check(3, 'write');
    f.check(5, 'write');
    expect(() => f.check(4, 'wal append')).toThrow(FencedError);
    expect(() => f.check(4, 'wal append')).toThrow(/wal append refused: epoch 4 is older than epoch 5/);
    expect(f.admit(4)).toBe(false);
    expect(f.admit(6)).toBe(true);
    expect(f.highest()).toBe(6);
  });

  it('refuses epochs that are not positive integers', () => {
    const f = createFence();
    expect(() => f.check(0, 'x')).toThrow(RangeError);
    expect(() => f.check(1.5, 'x')).toThrow(RangeError);
    expect(() => f.observe(Number.NaN)).toThrow(RangeError);
  });

  it('survives a restart through a file store and never goes back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gc-epoch-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'epoch');
    const f1 = createFence(fileEpochStore(path));
    f1.observe(9);
    f1.observe(4);
    expect(readFileSync(path, 'utf8').trim()).toBe('9');
    const f2 = createFence(fileEpochStore(path));
    expect(f2.highest()).toBe(9);
    expect(() => f2.check(8, 'lock')).toThrow(FencedError);
  });

  it('memory store only grows', () => {
    const s = memoryEpochStore(3);
    s.save(2);
    expect(s.load()).toBe(3);
  });

  it('parses header values strictly', () => {
    expect(parseEpoch('12')).toBe(12);
    expect(parseEpoch('0')).toBeUndefined();
    expect(parseEpoch('x')).toBeUndefined();
    expect(parseEpoch(undefined)).toBeUndefined();
  });
});
