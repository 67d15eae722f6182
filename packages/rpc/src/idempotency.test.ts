import { startServer, waitFor } from '@gc/testkit';
import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { RpcErrorCode, type HandlerError } from './errors.js';
import { idempotencyBucket } from './idempotency.js';
import { rpcFixture } from './test/fixture.js';
import { delay, rejection, Rig } from './test/helpers.js';

const rig = rpcFixture();

const platform = 'idem';

describe('idempotency keys: exactly-once execution (real nats-server, JetStream KV)', () => {
  it('concurrent duplicates on several instances run the handler once and all get its result', async () => {
    let runs = 0;
    for (const nodeId of ['n1', 'n2', 'n3']) {
      const s = await rig.server({ platform, app: 'pay', nodeId });
      s.handle('charge', async (p: { amount: number }) => {
        runs++;
        await delay(150);
        return { charged: p.amount, by: nodeId, run: runs };
      });
    }
    const clients = await Promise.all([1, 2, 3].map(() => rig.client({ platform })));
    const results = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        clients[i % 3]!.api('pay').call('charge', { amount: 42 }, { idempotencyKey: 'order-1' }),
      ),
    );
    expect(runs).toBe(1);
    for (const r of results) expect(r).toEqual(results[0]);
    // Later repeats get the stored result too, without running the handler.
    expect(
      await clients[0]!.api('pay').call('charge', { amount: 42 }, { idempotencyKey: 'order-1' }),
    ).toEqual(results[0]);
    expect(runs).toBe(1);
    // The result is stored in the app's idempotency bucket.
    const kv = await new Kvm(await rig.conn()).open(idempotencyBucket(platform, 'pay'));
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^charge\.[0-9a-f]{64}$/);
  });

  it('stores handler errors too: a repeat gets the same error without a second run', async () => {
    let runs = 0;
    const s = await rig.server({ platform, app: 'pay2', nodeId: 'n1' });
    s.handle('charge', () => {
      runs++;
      throw Object.assign(new Error('card declined'), { code: 'DECLINED' });
    });
    const api = (await rig.client({ platform })).api('pay2');
    const a = (await rejection(api.call('charge', { amount: 1 }, { idempotencyKey: 'k' }))) as HandlerError;
    const b = (await rejection(api.call('charge', { amount: 1 }, { idempotencyKey: 'k' }))) as HandlerError;
    expect(runs).toBe(1);
    for (const e of [a, b]) {
      expect(e.code).toBe(RpcErrorCode.HandlerError);
      expect(e.remoteCode).toBe('DECLINED');
      expect(e.message).toBe('handler pay2.charge failed [DECLINED]: card declined');
    }
  });

  it('refuses a key reused with another payload, and methods marked idempotent require a key', async () => {
    let runs = 0;
    const s = await rig.server({ platform, app: 'pay3', nodeId: 'n1' });
    s.handle('charge', (p: { amount: number }) => (runs++, p.amount), { idempotent: true });
    const api = (await rig.client({ platform })).api('pay3');
    expect(await api.call('charge', { amount: 5 }, { idempotencyKey: 'k' })).toBe(5);
    const conflict = await rejection(api.call('charge', { amount: 6 }, { idempotencyKey: 'k' }));
    expect(conflict.code).toBe(RpcErrorCode.IdempotencyConflict);
    expect(conflict.message).toMatch(
      /idempotency key "k" of pay3.charge was already used with a different payload/,
    );
    const noKey = await rejection(api.call('charge', { amount: 5 }));
    expect(noKey.code).toBe(RpcErrorCode.BadPayload);
    expect(noKey.message).toMatch(/requires an idempotency key/);
    expect(runs).toBe(1);
  });

  it('retries through a nats-server restart execute the handler exactly once', async () => {
    const own = await startServer();
    // Its own server (the test restarts it), so its own rig, closed in the finally.
    const ownRig = new Rig(own.url);
    try {
      let runs = 0;
      let requests = 0;
      const s = await ownRig.server({
        platform,
        app: 'ledger',
        nodeId: 'n1',
        middleware: [
          (ctx, next) => {
            if (ctx.idempotencyKey === 'tx-77') requests++;
            return next();
          },
        ],
      });
      s.handle('transfer', async (p: { cents: number }) => {
        runs++;
        await delay(800); // the server restarts while this runs
        return { ok: true, cents: p.cents, run: runs };
      });
      const api = (
        await ownRig.client({ platform, retry: { retries: 10, initialDelayMs: 100, maxDelayMs: 500 } })
      ).api('ledger');
      // Create the bucket first so the restart hits a running execution, not bucket creation.
      expect(await api.call('transfer', { cents: 1 }, { idempotencyKey: 'warm' })).toMatchObject({
        ok: true,
      });
      runs = 0;
      // Each attempt waits 500 ms: the first one times out while the server restarts, later ones are retries.
      const call = api.call('transfer', { cents: 500 }, { idempotencyKey: 'tx-77', timeoutMs: 500 });
      await waitFor(() => runs === 1, { timeoutMs: 5000, message: 'handler started' });
      await own.restart();
      const result = await call;
      expect(result).toEqual({ ok: true, cents: 500, run: 1 });
      expect(requests).toBeGreaterThanOrEqual(2); // the call was retried, and the retry reached the server
      // A later retry (for example after a client restart) gets the stored result.
      expect(await api.call('transfer', { cents: 500 }, { idempotencyKey: 'tx-77' })).toEqual(result);
      expect(runs).toBe(1);
    } finally {
      await ownRig.close();
      await own.close();
    }
  });

  it('an execution whose instance crashed is taken over after claimTtlMs (the handler runs again)', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((r) => (release = r));
    const ncA = await rig.conn('a');
    const a = await rig.server({ platform, app: 'jobs', nodeId: 'a', idempotency: { claimTtlMs: 300 } }, ncA);
    a.handle('run', async () => {
      runs++;
      await stuck;
      return 'from a';
    });
    const client = await rig.client({ platform });
    const first = rejection(
      client.api('jobs').call('run', null, { idempotencyKey: 'job-1', timeoutMs: 300, retries: 0 }),
    );
    await waitFor(() => runs === 1, { timeoutMs: 5000 });
    // Instance a "crashes": its connection goes away mid-execution, its claim is no longer renewed.
    await ncA.close();
    expect((await first).code).toBeDefined();
    const b = await rig.server({ platform, app: 'jobs', nodeId: 'b', idempotency: { claimTtlMs: 300 } });
    b.handle('run', () => {
      runs++;
      return 'from b';
    });
    const t0 = performance.now();
    expect(await client.api('jobs').call('run', null, { idempotencyKey: 'job-1', timeoutMs: 3000 })).toBe(
      'from b',
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250); // waited for the claim to expire
    expect(runs).toBe(2);
    release();
  });
});
