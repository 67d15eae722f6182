import { describe, expect, it } from 'vitest';
import { closedSignal } from './lifecycle.js';

describe('closedSignal', () => {
  it('is pending until resolve(), then resolved; later resolve() calls do nothing', async () => {
    const s = closedSignal();
    let settled = false;
    void s.promise.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(settled).toBe(false);
    s.resolve();
    s.resolve();
    await expect(s.promise).resolves.toBeUndefined();
    expect(settled).toBe(true);
  });
});
