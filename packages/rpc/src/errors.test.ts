import { ErrorCode, FakeClock } from '@gc/core';
import { waitFor } from '@gc/testkit';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RpcHeader } from './codec.js';
import { CircuitOpenError, HandlerError, RpcErrorCode, type BadPayloadError } from './errors.js';
import { rpcSubjects } from './subjects.js';
import { rpcFixture } from './test/fixture.js';
import { delay, rejection } from './test/helpers.js';

const MAX_PAYLOAD = 8192;
const rig = rpcFixture({ maxPayload: MAX_PAYLOAD });

const platform = 'errs';

describe('typed errors (real nats-server)', () => {
  it('unknown app / no instance: GC_RPC_NO_INSTANCE', async () => {
    const client = await rig.client({ platform });
    for (const to of ['any', 'leader', { node: 'n9' }] as const) {
      const err = await rejection(client.api('nosuchapp').call('get', {}, { to, retries: 0 }));
      expect(err.code).toBe(RpcErrorCode.NoInstance);
      expect(err.message).toMatch(/no instance of app "nosuchapp" answered get/);
    }
    // Key routing with no instance to hash to.
    const err = await rejection(client.api('nosuchapp').call('get', {}, { to: { key: 'k' }, retries: 0 }));
    expect(err.code).toBe(RpcErrorCode.NoInstance);
  });

  it('unknown method: GC_RPC_UNKNOWN_METHOD, listing the methods the app has', async () => {
    const s = await rig.server({ platform, app: 'shop', nodeId: 'n1' });
    s.handle('buy', () => 'ok');
    s.handle('list', () => []);
    const err = await rejection((await rig.client({ platform })).api('shop').call('sell', {}));
    expect(err.code).toBe(RpcErrorCode.UnknownMethod);
    expect(err.message).toBe('app "shop" has no method "sell" (it handles: buy, list)');
  });

  it('invalid app and method names are refused before anything is sent', async () => {
    const client = await rig.client({ platform });
    expect(() => client.api('Bad_App')).toThrow(/invalid app name "Bad_App"/);
    const err = await rejection(client.api('shop').call('a.b', {}));
    expect(err.code).toBe(ErrorCode.InvalidName);
    expect(err.message).toMatch(/invalid method name "a.b"/);
    const s = await rig.server({ platform, app: 'shop', nodeId: 'n1' });
    expect(() => s.handle('x>y', () => 1)).toThrow(/invalid method name/);
  });

  it('timeouts: no reply within the call timeout, and a handler over its own limit', async () => {
    const s = await rig.server({ platform, app: 'slow', nodeId: 'n1' });
    let aborted = false;
    s.handle('sleep', async (ms: number, ctx) => {
      ctx.signal.addEventListener('abort', () => (aborted = true));
      await delay(ms);
      return 'late';
    });
    s.handle('capped', async () => delay(2000), { timeoutMs: 100 });
    const api = (await rig.client({ platform })).api('slow');
    const t0 = performance.now();
    const err = await rejection(api.call('sleep', 600, { timeoutMs: 150, retries: 0 }));
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(err.message).toBe('RPC slow.sleep did not finish within 150 ms');
    expect(performance.now() - t0).toBeLessThan(500);
    const capped = await rejection(api.call('capped', null, { timeoutMs: 2000 }));
    expect(capped.code).toBe(ErrorCode.Timeout);
    expect(capped.message).toBe('handler of slow.capped on the server did not finish within 100 ms');
    // The handler's signal fires when its own limit passes.
    s.handle(
      'sleep2',
      async (_p, ctx) => {
        ctx.signal.addEventListener('abort', () => (aborted = true));
        await delay(400);
      },
      { timeoutMs: 50 },
    );
    expect((await rejection(api.call('sleep2'))).code).toBe(ErrorCode.Timeout);
    expect(aborted).toBe(true);
  });

  it('handler error: message and code propagate, the stack stays on the server', async () => {
    const s = await rig.server({ platform, app: 'stock', nodeId: 'n1' });
    s.handle('take', () => {
      throw Object.assign(new Error('only 2 left of sku-9'), { code: 'OUT_OF_STOCK', name: 'StockError' });
    });
    s.handle('boom', () => {
      throw new TypeError('cannot read x of undefined');
    });
    const client = await rig.client({ platform });
    const err = await rejection(client.api('stock').call('take', { sku: 'sku-9', qty: 3 }));
    expect(err).toBeInstanceOf(HandlerError);
    const h = err as HandlerError;
    expect(h.code).toBe(RpcErrorCode.HandlerError);
    expect(h.remoteCode).toBe('OUT_OF_STOCK');
    expect(h.remoteName).toBe('StockError');
    expect(h.remoteMessage).toBe('only 2 left of sku-9');
    expect(h.message).toBe('handler stock.take failed [OUT_OF_STOCK]: only 2 left of sku-9');
    // The wire reply has no stack.
    const nc = await rig.conn();
    const raw = await nc.request(rpcSubjects(platform, 'stock').any('boom'), new TextEncoder().encode('{}'));
    expect(raw.headers?.get(RpcHeader.Error)).toBe(RpcErrorCode.HandlerError);
    const body = raw.string();
    expect(body).toContain('cannot read x of undefined');
    expect(body).not.toMatch(/\bat |\.ts:|node:internal/);
    // Handler errors are not retried (the handler ran): one execution per call.
    let runs = 0;
    s.handle('fails', () => {
      runs++;
      throw new Error('nope');
    });
    await rejection(client.api('stock').call('fails', null, { retries: 3, idempotent: true }));
    expect(runs).toBe(1);
  });

  it('bad payload: schema violations name the field path, and the handler never runs', async () => {
    const s = await rig.server({ platform, app: 'orders', nodeId: 'n1' });
    let runs = 0;
    const Order = z.object({
      customer: z.string().min(1),
      items: z.array(z.object({ sku: z.string(), qty: z.number().int().positive() })).min(1),
    });
    s.handle(
      'place',
      (order: z.infer<typeof Order>) => {
        runs++;
        return order.items.length;
      },
      { schema: Order },
    );
    const api = (await rig.client({ platform })).api('orders');
    expect(await api.call('place', { customer: 'c1', items: [{ sku: 'a', qty: 2 }] })).toBe(1);
    const err = (await rejection(
      api.call('place', {
        customer: 'c1',
        items: [
          { sku: 'a', qty: 2 },
          { sku: 'b', qty: 'three' },
        ],
      }),
    )) as BadPayloadError;
    expect(err.code).toBe(RpcErrorCode.BadPayload);
    expect(err.message).toMatch(/^bad payload for orders\.place: items\[1\]\.qty: .*expected number/i);
    expect(err.issues).toEqual([
      { path: 'items[1].qty', message: expect.stringMatching(/expected number/i) },
    ]);
    const missing = (await rejection(api.call('place', { items: [] }))) as BadPayloadError;
    expect(missing.issues.map((i) => i.path).sort()).toEqual(['customer', 'items']);
    expect(runs).toBe(1);
  });

  it('malformed payloads: not JSON on the wire, or not JSON-serializable at the caller', async () => {
    const s = await rig.server({ platform, app: 'orders', nodeId: 'n1' });
    let runs = 0;
    s.handle('place', () => ++runs);
    const nc = await rig.conn();
    const reply = await nc.request(
      rpcSubjects(platform, 'orders').any('place'),
      new TextEncoder().encode('{"a":'),
    );
    expect(reply.headers?.get(RpcHeader.Error)).toBe(RpcErrorCode.BadPayload);
    expect(reply.string()).toMatch(/payload is not valid JSON/);
    const api = (await rig.client({ platform })).api('orders');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const err = await rejection(api.call('place', cyclic));
    expect(err.code).toBe(RpcErrorCode.BadPayload);
    expect(err.message).toMatch(/payload is not JSON-serializable \(.*circular/i);
    expect((await rejection(api.call('place', { n: 10n }))).message).toMatch(/BigInt/);
    expect(runs).toBe(0);
  });

  it('payload too large: refused before sending (against the server max_payload), and oversized replies', async () => {
    const s = await rig.server({ platform, app: 'blobs', nodeId: 'n1' });
    let runs = 0;
    let arrived = 0;
    s.handle('put', () => ++runs);
    s.handle('get', (n: number) => 'y'.repeat(n));
    const nc = await rig.conn();
    nc.subscribe(rpcSubjects(platform, 'blobs').any('put'), {
      callback: () => {
        arrived++;
      },
    });
    await nc.flush();
    const client = await rig.client({ platform });
    const api = client.api('blobs');
    const err = await rejection(api.call('put', 'x'.repeat(MAX_PAYLOAD)));
    expect(err.code).toBe(RpcErrorCode.PayloadTooLarge);
    expect(err.message).toMatch(
      new RegExp(
        `request of blobs.put is ${MAX_PAYLOAD + 2} bytes, over the server's max_payload of ${MAX_PAYLOAD} bytes`,
      ),
    );
    await delay(50);
    expect(runs).toBe(0);
    expect(arrived).toBe(0);
    expect(await api.call('put', 'x'.repeat(100))).toBe(1);
    const big = await rejection(api.call('get', MAX_PAYLOAD + 10));
    expect(big.code).toBe(RpcErrorCode.PayloadTooLarge);
    expect(big.message).toMatch(/reply of blobs.get is \d+ bytes, over the server's max_payload of 8192/);
  });

  it('open circuit after consecutive failures, half-open after the pause, closed again on success', async () => {
    const s = await rig.server({ platform, app: 'flaky', nodeId: 'n1' });
    let failing = true;
    let runs = 0;
    s.handle('op', () => {
      runs++;
      if (failing) throw new Error('database down');
      return 'ok';
    });
    // The breaker times its pause on the client's clock: a FakeClock, moved by hand (no sleeping).
    const clock = new FakeClock();
    const registry = new Registry();
    const client = await rig.client({
      platform,
      clock,
      registry,
      circuit: { consecutiveFailures: 3, halfOpenAfterMs: 300 },
    });
    const gauge = async () =>
      (await registry.getSingleMetric('gc_rpc_circuit_state')!.get()).values.find(
        (v) => v.labels.app === 'flaky' && v.labels.target === 'any',
      )?.value;
    const api = client.api('flaky');
    for (let i = 0; i < 3; i++)
      expect((await rejection(api.call('op'))).code).toBe(RpcErrorCode.HandlerError);
    expect(client.circuits()['flaky/any']).toBe('open');
    expect(await gauge()).toBe(1);
    const open = await rejection(api.call('op'));
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect(open.code).toBe(RpcErrorCode.CircuitOpen);
    expect(open.message).toMatch(/circuit to app "flaky" \(target any\) is open/);
    expect((open as CircuitOpenError).target).toBe('any');
    expect(runs).toBe(3); // failed fast: the handler was not called
    await clock.advance(299);
    expect((await rejection(api.call('op'))).code).toBe(RpcErrorCode.CircuitOpen);
    expect(client.circuits()['flaky/any']).toBe('open');
    await clock.advance(1);
    expect(client.circuits()['flaky/any']).toBe('half-open');
    expect(await gauge()).toBe(2);
    // Half-open: one trial call goes through; it fails, so the circuit opens again.
    expect((await rejection(api.call('op'))).code).toBe(RpcErrorCode.HandlerError);
    expect(runs).toBe(4);
    expect(client.circuits()['flaky/any']).toBe('open');
    expect((await rejection(api.call('op'))).code).toBe(RpcErrorCode.CircuitOpen);
    await clock.advance(300);
    failing = false;
    expect(await api.call('op')).toBe('ok');
    expect(client.circuits()['flaky/any']).toBe('closed');
    expect(await gauge()).toBe(0);
    // Caller errors do not count against the target.
    for (let i = 0; i < 5; i++) await rejection(api.call('nope'));
    expect(client.circuits()['flaky/any']).toBe('closed');
  });

  it('a half-open circuit lets one trial call through; calls that arrive while it runs fail fast', async () => {
    const s = await rig.server({ platform, app: 'trial', nodeId: 'n1' });
    let failing = true;
    let runs = 0;
    let release: (() => void) | undefined;
    s.handle('op', async () => {
      runs++;
      if (failing) throw new Error('database down');
      await new Promise<void>((r) => (release = r));
      return 'ok';
    });
    const clock = new FakeClock();
    const client = await rig.client({
      platform,
      clock,
      circuit: { consecutiveFailures: 2, halfOpenAfterMs: 1000 },
    });
    const api = client.api('trial');
    for (let i = 0; i < 2; i++)
      expect((await rejection(api.call('op'))).code).toBe(RpcErrorCode.HandlerError);
    expect(client.circuits()['trial/any']).toBe('open');
    await clock.advance(1000);
    failing = false;
    const trial = api.call('op');
    await waitFor(() => release !== undefined, { timeoutMs: 5000, message: 'the trial call runs' });
    // (A time limit, so that a breaker letting them through fails here rather than hanging.)
    const others = await Promise.all(
      [1, 2, 3].map(() => rejection(api.call('op', null, { timeoutMs: 1000 }))),
    );
    expect(others.map((e) => e.code)).toEqual(Array(3).fill(RpcErrorCode.CircuitOpen));
    expect(runs).toBe(3); // two failures and the one trial
    expect(client.circuits()['trial/any']).toBe('half-open');
    release!();
    expect(await trial).toBe('ok');
    expect(client.circuits()['trial/any']).toBe('closed');
  });

  it('bulkhead: calls over max in flight + queue are refused at once', async () => {
    const s = await rig.server({ platform, app: 'narrow', nodeId: 'n1' });
    s.handle('wait', async () => {
      await delay(200);
      return 'done';
    });
    const client = await rig.client({ platform, bulkhead: { maxInFlight: 2, maxQueued: 1 } });
    const api = client.api('narrow');
    const calls = Array.from({ length: 5 }, () =>
      api.call('wait').then(
        (v) => v,
        (e: Error & { code?: string }) => e.code,
      ),
    );
    const results = await Promise.all(calls);
    expect(results.filter((r) => r === 'done')).toHaveLength(3);
    expect(results.filter((r) => r === RpcErrorCode.BulkheadFull)).toHaveLength(2);
    const err = await rejection(Promise.all(Array.from({ length: 4 }, () => api.call('wait'))));
    expect(err.message).toMatch(/too many calls to app "narrow": 2 in flight and 1 queued/);
  });

  it('unreadable replies (a foreign responder on the subject): GC_RPC_PROTOCOL', async () => {
    const nc = await rig.conn();
    const subjects = rpcSubjects(platform, 'foreign');
    nc.subscribe(subjects.subscriptions.any, {
      queue: subjects.queue,
      callback: (_e, m) => {
        m.respond('<html>not json</html>');
      },
    });
    nc.subscribe(subjects.subscriptions.leader, {
      callback: (_e, m) => {
        m.respond('{}');
      },
    });
    await nc.flush();
    const api = (await rig.client({ platform })).api('foreign');
    const err = await rejection(api.call('x'));
    expect(err.code).toBe(RpcErrorCode.Protocol);
    expect(err.message).toMatch(/unreadable reply from foreign.x: the reply is not JSON/);
    const noEpoch = await rejection(api.call('x', null, { to: 'leader' }));
    expect(noEpoch.code).toBe(RpcErrorCode.Protocol);
    expect(noEpoch.message).toMatch(/a leader reply without a Gc-Epoch header/);
  });

  it('close() waits for calls in flight, and a closed client refuses calls; closed() resolves after close', async () => {
    const s = await rig.server({ platform, app: 'closing', nodeId: 'n1' });
    s.handle('slow', async () => {
      await delay(150);
      return 'finished';
    });
    const client = await rig.client({ platform });
    const running = client.api('closing').call('slow');
    await delay(20);
    const closed: string[] = [];
    void client.closed().then(() => closed.push('client'));
    void s.closed().then(() => closed.push('server'));
    // close() refuses new calls at once and resolves when the calls in flight are done.
    const [a, b] = [client.close(), client.close()];
    expect((await rejection(client.api('closing').call('slow'))).code).toBe(ErrorCode.Closed);
    await delay(20);
    expect(closed).toEqual([]); // the slow call still runs
    await Promise.all([a, b]);
    expect(closed).toEqual(['client']);
    expect(client.inFlight).toBe(0);
    expect(await running).toBe('finished');
    await s.close();
    expect(closed).toEqual(['client', 'server']);
    await s.close();
  });
});
