// Expiry is decided on the contender's own monotonic clock: these tests drive it with a FakeClock (no
// sleeping for TTLs) against a real nats-server, with a holder whose clock is frozen (a paused process).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, createFence, FakeClock, FencedError } from '@gc/core';
import { serverFlavors, startServer, waitFor, type NatsServer } from '@gc/testkit';
import { createLocks, LockLostError, type Lease } from './index.js';

const flavors = serverFlavors('[locks] skipping the nats-server 2.10.x fake-clock run: no 2.10 binary');

describe.each(flavors)('lock expiry on the contender clock (nats-server %s)', (flavor) => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startServer({ flavor });
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc.close();
    await server.close();
  });

  it('a frozen holder keeps the lock until the contender’s clock has counted one full TTL, whatever the wall clocks say', async () => {
    const frozen = new FakeClock(0, Date.UTC(2001, 0, 1)); // never advances; a wall clock 25 years off
    const contenderClock = new FakeClock(1_000_000, Date.UTC(2040, 0, 1));
    const bucket = `fc_${flavor.replace('.', '')}_locks`;
    const a = await createLocks(nc, { bucket, owner: 'frozen', clock: frozen });
    const b = await createLocks(nc, {
      bucket,
      owner: 'contender',
      clock: contenderClock,
      pollIntervalMs: 500,
    });
    const held = await a.acquire('job', { ttlMs: 10_000 }); // auto-renew timers never fire on a frozen clock
    let got: Lease | undefined;
    const waiting = b.acquire('job', { waitMs: 60_000 }).then((l) => (got = l));
    const step = async (ms: number) => {
      await contenderClock.advance(ms);
      await new Promise((r) => setTimeout(r, 15)); // let the real KV round trips of a re-check finish
    };
    await new Promise((r) => setTimeout(r, 50));
    for (let t = 0; t < 9_500; t += 500) await step(500);
    expect(got).toBeUndefined(); // 9.5 s of contender time: still the holder's
    expect(held.held()).toBe(true); // the frozen holder has not noticed anything either
    for (let t = 0; t < 1_500 && !got; t += 250) await step(250);
    await waitFor(() => got, { timeoutMs: 5000 });
    await waiting;
    expect(got!.epoch).toBe(held.epoch + 1);
    // The holder wakes up: its refresh fails and the fence refuses its epoch.
    await expect(held.refresh()).rejects.toBeInstanceOf(LockLostError);
    const fence = createFence();
    fence.check(got!.epoch, 'write');
    expect(() => fence.check(held.epoch, 'write')).toThrow(FencedError);
    await got!.release();
    await a.close();
    await b.close();
  });

  it('the holder gives up at 2/3 of the TTL on its own clock when refreshes stop succeeding', async () => {
    const clock = new FakeClock();
    const a = await createLocks(nc, { bucket: `fc2_${flavor.replace('.', '')}_locks`, owner: 'a', clock });
    const lease = await a.acquire('job', { ttlMs: 9_000, autoRenew: false });
    await clock.advance(5_999);
    expect(lease.held()).toBe(true);
    await clock.advance(2);
    expect(lease.held()).toBe(false);
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    expect((lease.signal.reason as LockLostError).reason).toMatch(/no successful refresh within 6000 ms/);
    await a.close();
  });
});
