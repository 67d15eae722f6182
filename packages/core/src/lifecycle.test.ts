import { describe, expect, it } from 'vitest';
import { ClosableResource, closedSignal } from './lifecycle.js';

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

describe('ClosableResource', () => {
  class Res extends ClosableResource {
    runs = 0;
    fail = false;
    release!: () => void;
    readonly held = new Promise<void>((r) => (this.release = r));
    get isClosing() {
      return this.closing;
    }
    protected async closeResources(): Promise<void> {
      this.runs++;
      await this.held;
      if (this.fail) throw new Error('release failed');
    }
  }

  it('runs closeResources once; a concurrent close() waits for the first; closed() resolves after it', async () => {
    const r = new Res();
    let closed = false;
    void r.closed().then(() => (closed = true));
    expect(r.isClosing).toBe(false);
    const a = r.close();
    const b = r.close();
    expect(r.isClosing).toBe(true);
    await new Promise((res) => setTimeout(res, 5));
    expect(closed).toBe(false);
    r.release();
    await a;
    expect(closed).toBe(true); // already when close() resolves
    await b;
    await r[Symbol.asyncDispose]();
    expect(r.runs).toBe(1);
  });

  it('a failing close rejects every caller with its error, and closed() still resolves', async () => {
    const r = new Res();
    r.fail = true;
    r.release();
    await expect(r.close()).rejects.toThrow('release failed');
    await expect(r.close()).rejects.toThrow('release failed');
    await expect(r.closed()).resolves.toBeUndefined();
    expect(r.runs).toBe(1);
  });

  it('a close() from inside closeResources() (before its first await) returns the same promise', async () => {
    let inner: Promise<void> | undefined;
    let runs = 0;
    class Reentrant extends ClosableResource {
      protected async closeResources(): Promise<void> {
        runs++;
        inner = this.close();
        expect(this.closing).toBe(true);
        await Promise.resolve();
      }
    }
    const r = new Reentrant();
    const outer = r.close();
    expect(inner).toBe(outer);
    await outer;
    expect(runs).toBe(1);
  });

  it('supports await using', async () => {
    let r: Res | undefined;
    {
      await using x = new Res();
      r = x;
      x.release();
    }
    expect(r.runs).toBe(1);
    await expect(r.closed()).resolves.toBeUndefined();
  });
});
