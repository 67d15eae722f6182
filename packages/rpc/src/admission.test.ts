import { describe, expect, it } from 'vitest';
import { decodeKeyHeader, encodeKeyHeader, RpcHeader } from './codec.js';
import { NotOwnerError, RpcErrorCode } from './errors.js';
import { rpcFixture } from './test/fixture.js';
import { delay, rejection } from './test/helpers.js';
import type { RouteRetry } from './types.js';

const rig = rpcFixture();

const platform = 'adm';

/** A client whose route hook picks `first`, then `retry` once told why a call failed; `seen` is what it was told. */
async function reroutingClient(first: string, retry: string) {
  const seen: Array<RouteRetry | undefined> = [];
  const client = await rig.client({
    platform,
    retry: { initialDelayMs: 1, maxDelayMs: 5 },
    route: (_app, _key, previous) => {
      seen.push(previous);
      return previous ? retry : first;
    },
  });
  return { client, seen };
}

describe('key admission and re-routing (real nats-server)', () => {
  it('sends the key in Gc-Rpc-Key (percent-encoded) and admits it before the handler', async () => {
    const admitted: string[] = [];
    let done = 0;
    const s = await rig.server({
      platform,
      app: 'keys',
      nodeId: 'n1',
      admitKey: (key) => {
        admitted.push(key);
        return () => void done++;
      },
    });
    s.handle('echo', (_p, ctx) => ctx.headers.get(RpcHeader.Key));
    const client = await rig.client({ platform, route: () => 'n1' });
    const key = 'tenant:ä/1 \r\n%';
    const header = await client.api('keys').call('echo', null, { to: { key } });
    expect(header).toBe(encodeKeyHeader(key));
    expect(decodeKeyHeader(String(header))).toBe(key);
    expect(admitted).toEqual([key]);
    expect(done).toBe(1); // the admission ended with the request
    // Calls without a key are not admitted (nothing to check).
    await client.api('keys').call('echo', null, { to: { node: 'n1' } });
    expect(admitted).toHaveLength(1);
  });

  it('a refusal is GC_RPC_NOT_OWNER, the handler does not run, and the retry tells the route hook', async () => {
    let ran = 0;
    const mk = async (nodeId: string, owner: boolean) => {
      const s = await rig.server({
        platform,
        app: 'moving',
        nodeId,
        admitKey: (_key, method) => {
          if (!owner)
            throw new NotOwnerError('moving', method, nodeId, 'moving', { partition: 7, revision: 41 });
          return () => undefined;
        },
      });
      s.handle('who', () => {
        ran++;
        return nodeId;
      });
    };
    await mk('old', false);
    await mk('new', true);
    const { client, seen } = await reroutingClient('old', 'new');
    expect(await client.api('moving').call('who', null, { to: { key: 'k' } })).toBe('new');
    expect(ran).toBe(1);
    expect(seen[0]).toBeUndefined();
    expect(seen[1]?.node).toBe('old');
    const err = seen[1]?.error as NotOwnerError;
    expect(err.code).toBe(RpcErrorCode.NotOwner);
    expect(err).toBeInstanceOf(NotOwnerError);
    expect([err.nodeId, err.reason, err.partition, err.revision]).toEqual(['old', 'moving', 7, 41]);

    // Without retries the refusal reaches the caller, typed, saying the handler did not run.
    const c2 = await rig.client({ platform, route: () => 'old' });
    const e2 = await rejection(c2.api('moving').call('who', null, { to: { key: 'k' }, retries: 0 }));
    expect(e2.code).toBe(RpcErrorCode.NotOwner);
    expect(e2.message).toMatch(/handler did not run/);
    expect(ran).toBe(1);
  });

  it('a hook that throws something else still refuses as not-owner; a hook may hold (async)', async () => {
    let open = false;
    const s = await rig.server({
      platform,
      app: 'hold',
      nodeId: 'h1',
      admitKey: async (key) => {
        if (key === 'boom') throw new Error('store down');
        while (!open) await delay(5);
        return () => undefined;
      },
    });
    s.handle('who', () => 'h1');
    const client = await rig.client({ platform, route: () => 'h1' });
    const e = await rejection(client.api('hold').call('who', null, { to: { key: 'boom' }, retries: 0 }));
    expect(e.code).toBe(RpcErrorCode.NotOwner);
    expect((e as NotOwnerError).reason).toBe('admission-failed');
    expect(e.message).toMatch(/store down/);
    const pending = client.api('hold').call('who', null, { to: { key: 'x' } });
    await delay(50);
    open = true;
    expect(await pending).toBe('h1');
  });

  it('tells the route hook when the chosen node is gone (no responders)', async () => {
    const s = await rig.server({ platform, app: 'gone', nodeId: 'alive' });
    s.handle('who', () => 'alive');
    const { client, seen } = await reroutingClient('dead', 'alive');
    expect(await client.api('gone').call('who', null, { to: { key: 'k' } })).toBe('alive');
    expect(seen[1]?.node).toBe('dead');
    expect((seen[1]?.error as { code?: string }).code).toBe(RpcErrorCode.NoInstance);
  });
});
