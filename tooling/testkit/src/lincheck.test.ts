import { describe, expect, it } from 'vitest';
import {
  checkLinearizable,
  fencedRegisterModel,
  kvModel,
  lockModel,
  registerModel,
  type KvInput,
  type KvOutput,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
} from './lincheck.js';

type R = Operation<RegisterInput<number>, RegisterOutput<number>>;
const op = (client: string, input: R['input'], output: R['output'], call: number, ret: number): R => ({
  client,
  input,
  output,
  call,
  ret,
});

describe('linearizability checker', () => {
  it('accepts concurrent writes and reads that some real-time order explains', () => {
    const h: R[] = [
      op('a', { op: 'write', value: 1 }, { ok: true }, 0, 10),
      op('b', { op: 'write', value: 2 }, { ok: true }, 5, 15),
      op('c', { op: 'read' }, { value: 1 }, 12, 20), // b's write first, then a's: fine while they overlap
      op('c', { op: 'read' }, { value: 1 }, 21, 22),
    ];
    expect(checkLinearizable(h, registerModel(0)).ok).toBe(true);
  });

  it('rejects a stale read after a completed write (the classic non-linearizable history)', () => {
    const h: R[] = [
      op('a', { op: 'write', value: 1 }, { ok: true }, 0, 10),
      op('b', { op: 'read' }, { value: 1 }, 11, 12),
      op('c', { op: 'read' }, { value: 0 }, 13, 14), // goes back in time
    ];
    const r = checkLinearizable(h, registerModel(0));
    expect(r.ok).toBe(false);
    expect(r.counterexample?.stuckAt.join(' ')).toMatch(/c:/);
  });

  it('rejects two CAS from the same value both succeeding, accepts one succeeding', () => {
    const both: R[] = [
      op('a', { op: 'cas', expect: 0, value: 1 }, { ok: true }, 0, 10),
      op('b', { op: 'cas', expect: 0, value: 2 }, { ok: true }, 1, 11),
    ];
    expect(checkLinearizable(both, registerModel(0)).ok).toBe(false);
    const one: R[] = [both[0]!, op('b', { op: 'cas', expect: 0, value: 2 }, { ok: false }, 1, 11)];
    expect(checkLinearizable(one, registerModel(0)).ok).toBe(true);
  });

  it('treats an operation with an unknown outcome as taking effect at any point after its call, or never', () => {
    const lost: R[] = [
      op('a', { op: 'write', value: 7 }, undefined, 0, Infinity),
      op('b', { op: 'read' }, { value: 0 }, 5, 6),
      op('b', { op: 'read' }, { value: 7 }, 7, 8),
    ];
    expect(checkLinearizable(lost, registerModel(0)).ok).toBe(true);
    const never: R[] = [
      op('a', { op: 'write', value: 7 }, undefined, 0, Infinity),
      op('b', { op: 'read' }, { value: 0 }, 5, 6),
    ];
    expect(checkLinearizable(never, registerModel(0)).ok).toBe(true);
    const flicker: R[] = [...lost, op('b', { op: 'read' }, { value: 0 }, 9, 10)]; // 7 then 0 again: no
    expect(checkLinearizable(flicker, registerModel(0)).ok).toBe(false);
  });

  it('KV per key: create once, update by revision, reads see the last write', () => {
    type K = Operation<KvInput, KvOutput>;
    const k = (
      client: string,
      input: KvInput,
      output: KvOutput | undefined,
      call: number,
      ret: number,
    ): K => ({
      client,
      input,
      output,
      call,
      ret,
    });
    const good: K[] = [
      k('a', { op: 'create', key: 'x', value: 'a' }, { ok: true, revision: 3 }, 0, 2),
      k('b', { op: 'create', key: 'x', value: 'b' }, { ok: false }, 1, 3),
      k('b', { op: 'get', key: 'x' }, { value: 'a', revision: 3 }, 4, 5),
      k('b', { op: 'update', key: 'x', value: 'b', revision: 3 }, { ok: true, revision: 9 }, 6, 7),
      k('a', { op: 'update', key: 'x', value: 'a2', revision: 3 }, { ok: false }, 6, 8),
      k('c', { op: 'put', key: 'y', value: 'other' }, { ok: true, revision: 4 }, 0, 1),
    ];
    expect(checkLinearizable(good, kvModel()).ok).toBe(true);
    const lostUpdate: K[] = [
      ...good.slice(0, 4),
      k('a', { op: 'update', key: 'x', value: 'a2', revision: 3 }, { ok: true, revision: 10 }, 8, 9),
    ];
    expect(checkLinearizable(lostUpdate, kvModel()).ok).toBe(false);
  });

  it('a lock never has two holders without an expiry, and grants carry increasing epochs', () => {
    const m = lockModel();
    const two = [
      {
        client: 'a',
        input: { op: 'acquire' as const, owner: 'a' },
        output: { granted: true, epoch: 5 },
        call: 0,
        ret: 1,
      },
      {
        client: 'b',
        input: { op: 'acquire' as const, owner: 'b' },
        output: { granted: true, epoch: 6 },
        call: 2,
        ret: 3,
      },
    ];
    expect(checkLinearizable(two, m).ok).toBe(false);
    expect(checkLinearizable(two, lockModel({ expiry: true })).ok).toBe(true);
    const backwards = [two[0]!, { ...two[1]!, output: { granted: true, epoch: 4 } }];
    expect(checkLinearizable(backwards, lockModel({ expiry: true })).ok).toBe(false);
  });

  it('a fenced register refuses a lower epoch after a higher one wrote', () => {
    const m = fencedRegisterModel();
    const ok = [
      {
        client: 'a',
        input: { op: 'write' as const, epoch: 2, value: 'a' },
        output: { ok: true },
        call: 0,
        ret: 1,
      },
      {
        client: 'b',
        input: { op: 'write' as const, epoch: 1, value: 'b' },
        output: { ok: false },
        call: 2,
        ret: 3,
      },
      { client: 'c', input: { op: 'read' as const }, output: { value: 'a', epoch: 2 }, call: 4, ret: 5 },
    ];
    expect(checkLinearizable(ok, m).ok).toBe(true);
    const staleAccepted = [ok[0]!, { ...ok[1]!, output: { ok: true } }];
    expect(checkLinearizable(staleAccepted, m).ok).toBe(false);
  });

  it('finishes on a thousand concurrent operations in well under a second', () => {
    const h: R[] = [];
    let v = 0;
    for (let i = 0; i < 1000; i++) {
      const t = i * 10;
      if (i % 3 === 0) h.push(op(`w${i % 5}`, { op: 'write', value: ++v }, { ok: true }, t, t + 15));
      else h.push(op(`r${i % 5}`, { op: 'read' }, { value: v }, t + 16, t + 17));
    }
    const t0 = performance.now();
    const r = checkLinearizable(h, registerModel(0));
    expect(r.ok).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
