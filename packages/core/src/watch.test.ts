import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.js';
import { createLogger } from './logger.js';
import { keepWatching, type StoppableIterable } from './watch.js';

/** A watch fed by hand: `push` an entry, `fail` it, `end` it. */
function handWatch<E>() {
  const queue: Array<{ e?: E; err?: Error; end?: boolean }> = [];
  let wake: (() => void) | undefined;
  let stopped = false;
  const put = (x: { e?: E; err?: Error; end?: boolean }) => {
    queue.push(x);
    wake?.();
  };
  const w: StoppableIterable<E> & { push(e: E): void; fail(err: Error): void; stopped(): boolean } = {
    push: (e) => put({ e }),
    fail: (err) => put({ err }),
    stop: () => {
      stopped = true;
      put({ end: true });
    },
    stopped: () => stopped,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const x = queue.shift()!;
        if (x.err) throw x.err;
        if (x.end) return;
        yield x.e!;
      }
    },
  };
  return w;
}

describe('keepWatching', () => {
  it('observes every entry, opens a new watch after a failure (logged) or an end, and stops', async () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', sink: { write: (l: string) => void lines.push(l) } });
    const seen: number[] = [];
    const first = handWatch<number>();
    const second = handWatch<number>();
    const third = handWatch<number>();
    const opened = [second, third];
    let opens = 0;
    const stop = keepWatching(
      first,
      () => {
        opens++;
        return Promise.resolve(opened.shift()!);
      },
      (n) => seen.push(n),
      { clock, logger, what: 'test watch', fields: { bucket: 'b' } },
    );
    first.push(1);
    first.push(2);
    await expect.poll(() => seen).toEqual([1, 2]);
    first.fail(new Error('connection closed'));
    await expect.poll(() => lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'test watch failed; resuming', bucket: 'b' });
    expect(opens).toBe(0); // not before the pause
    await clock.advance(250);
    await expect.poll(() => opens).toBe(1);
    second.push(3);
    await expect.poll(() => seen).toEqual([1, 2, 3]);
    second.stop(); // ended by the server: a new one after the pause, nothing logged
    await clock.advance(250);
    await expect.poll(() => opens).toBe(2);
    expect(lines).toHaveLength(1);
    third.push(4);
    await expect.poll(() => seen).toEqual([1, 2, 3, 4]);
    stop();
    expect(third.stopped()).toBe(true);
    await clock.advance(1000);
    expect(opens).toBe(2);
  });
});
