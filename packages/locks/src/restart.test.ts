// A nats-server restart under @gc/locks: held leases that cannot refresh are lost at 2/3 of their TTL,
// a waiting acquire rides out the outage.
import { describe, expect, it } from 'vitest';
import { connect } from '@gc/core';
import { startServer, waitFor } from '@gc/testkit';
import { createLocks, LockLostError } from './index.js';

describe('locks across a nats-server restart', () => {
  it('a waiting acquire rides out the outage; a held lease that cannot refresh in time is lost', async () => {
    const server = await startServer();
    const nc = await connect({ servers: server.url });
    const a = await createLocks(nc, { bucket: 'restart_locks', owner: 'node-a', opTimeoutMs: 1000 });
    const held = await a.acquire('short', { ttlMs: 600 });
    await server.stop();
    // The holder cannot refresh while the server is down: it gives up at 2/3 of the TTL.
    await waitFor(() => !held.held(), { timeoutMs: 3000 });
    expect(held.signal.reason).toBeInstanceOf(LockLostError);
    expect((held.signal.reason as LockLostError).reason).toMatch(/no successful refresh/);
    const waiting = a.acquire('other', { waitMs: 15_000 });
    await new Promise((r) => setTimeout(r, 500));
    await server.start();
    const lease = await waiting;
    expect(lease.epoch).toBe(1);
    await lease.release();
    await a.close();
    await nc.close();
    await server.close();
  });
});
