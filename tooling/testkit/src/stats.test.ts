import { describe, expect, it } from 'vitest';
import { median, percentile } from './stats.js';

describe('stats', () => {
  it('median: the middle value, the mean of the two middle ones, NaN for none; the input is not reordered', () => {
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([10, 2])).toBe(6); // numeric order, not the default string order
    expect(median([])).toBeNaN();
  });

  it('percentile: nearest rank, always a value of the list', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([7, 3], 50)).toBe(3);
    expect(percentile([], 50)).toBeNaN();
  });
});
