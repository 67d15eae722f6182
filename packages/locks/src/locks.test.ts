import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { Kvm } from '@nats-io/kv';
import { ConfigError, connect, createFence, FencedError, InvalidNameError } from '@gc/core';
import { assertClosesOnce, ServerFixture, serverFlavors } from '@gc/testkit';
import {
  createLocks,
  LockErrorCode,
  LockLostError,
  LockNotHeldError,
  LockTimeoutError,
  NotLockOwnerError,
  PermitsMismatchError,
  type LockEvent,
} from './index.js';

const flavors = serverFlavors(
  '[locks] skipping the nats-server 2.10.x runs: no 2.10 binary (run scripts/provision-nats.sh)',
);

let bucketSeq = 0;

describe.each(flavors)('locks on nats-server (%s)', (flavor) => {
  const nats = new ServerFixture({ server: { flavor }, connect: (url) => connect({ servers: url }) });
  const locks = async (owner: string, extra: Record<string, unknown> = {}, bucket?: string) => {
    const l = await createLocks(nats.nc, { bucket: bucket ?? `t${bucketSeq}_locks`, owner, ...extra });
    nats.track(l);
    return l;
  };
  const fresh = () => `t${++bucketSeq}_locks`;

  beforeAll(() => nats.start());
  afterAll(() => nats.close());

  it('grants with strictly increasing epochs, shows the holder and releases', async () => {
    const bucket = fresh();
    const a = await locks('node-a', {}, bucket);
    const b = await locks('node-b', {}, bucket);
    const epochs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const l = await (i % 2 ? b : a).acquire('job', { ttlMs: 2000 });
      epochs.push(l.epoch);
      const info = await a.info('job');
      expect(info).toMatchObject({
        name: 'job',
        key: 'job',
        state: 'held',
        owner: i % 2 ? 'node-b' : 'node-a',
      });
      expect((await b.holders()).map((h) => h.owner)).toEqual([i % 2 ? 'node-b' : 'node-a']);
      await l.release();
      expect(l.held()).toBe(false);
      await l.release(); // idempotent
    }
    expect(epochs).toEqual([1, 2, 3]);
    const after = await a.info('job');
    expect(after).toMatchObject({ state: 'free', epoch: 3, released: { by: 'node-a', forced: false } });
    expect(await a.holders()).toEqual([]);
    expect(await a.info('never-taken')).toBeNull();
  });

  it('refuses a release by a non-owner and of a free lock, with typed errors', async () => {
    const bucket = fresh();
    const a = await locks('node-a', {}, bucket);
    const b = await locks('node-b', {}, bucket);
    const a2 = await locks('node-a', {}, bucket); // same owner, other process/instance
    const lease = await a.acquire('res');
    const err = await b.release('res').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLockOwnerError);
    expect(err).toMatchObject({ code: LockErrorCode.NotOwner, holder: 'node-a', owner: 'node-b' });
    expect((err as Error).message).toMatch(/node-b cannot release it because node-a holds it/);
    await expect(a2.release('res')).rejects.toBeInstanceOf(NotLockOwnerError);
    expect((await b.info('res'))?.state).toBe('held');
    await a.release('res');
    expect(lease.held()).toBe(false);
    await expect(b.release('res')).rejects.toBeInstanceOf(LockNotHeldError);
    await expect(b.release('nothing')).rejects.toMatchObject({ code: LockErrorCode.NotHeld });
  });

  it('rejects invalid lock names and unsafe options with clear errors', async () => {
    const a = await locks('node-a', {}, fresh());
    for (const bad of ['', 'a.b', 'a b', '*', '>', 'x'.repeat(65), '-x']) {
      const err = await a.acquire(bad).catch((e: unknown) => e);
      expect(err, bad).toBeInstanceOf(InvalidNameError);
      expect((err as InvalidNameError).code).toBe('GC_INVALID_NAME');
      expect((err as Error).message).toMatch(/invalid lock name/);
    }
    await expect(a.tryAcquire('a.b')).rejects.toThrow(/invalid lock name "a.b"/);
    expect(() => a.semaphore('s.1', { permits: 2 })).toThrow(/invalid semaphore name/);
    await expect(a.acquire('ok', { ttlMs: 5 })).rejects.toBeInstanceOf(ConfigError);
    expect(() => a.semaphore('s', { permits: 0 })).toThrow(ConfigError);
    await expect(createLocks(nats.nc, { bucket: 'bad.bucket', owner: 'x' })).rejects.toThrow(/locks.bucket/);
    await expect(createLocks(nats.nc, { bucket: 'ok', owner: 'a b' })).rejects.toThrow(/locks.owner/);
    await expect(a.forceRelease('ok', { reason: '  ' })).rejects.toThrow(/reason is required/);
  });

  it('tryAcquire returns null while held; a waiter is woken by the watch at release, not by polling', async () => {
    const bucket = fresh();
    const a = await locks('node-a', {}, bucket);
    const b = await locks('node-b', { pollIntervalMs: 30_000 }, bucket);
    const lease = await a.acquire('w', { ttlMs: 30_000 });
    expect(await b.tryAcquire('w')).toBeNull();
    const waiting = b.acquire('w', { waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    const releasedAt = performance.now();
    await lease.release();
    const got = await waiting;
    const latency = performance.now() - releasedAt;
    expect(got.epoch).toBe(lease.epoch + 1);
    expect(latency).toBeLessThan(1000); // the safety-net poll is 30 s and the TTL 30 s
    await got.release();
  });

  it('times out a waiting acquire with LockTimeoutError naming the holder', async () => {
    const bucket = fresh();
    const a = await locks('node-a', {}, bucket);
    const b = await locks('node-b', {}, bucket);
    await a.acquire('t', { ttlMs: 10_000 });
    const t0 = performance.now();
    const err = await b.acquire('t', { waitMs: 300 }).catch((e: unknown) => e);
    const took = performance.now() - t0;
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(err).toMatchObject({ code: 'GC_TIMEOUT', holders: ['node-a'] });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
  });

  it('a holder that stops refreshing loses the lock after its TTL; the contender gets a higher epoch and the fence refuses the old one', async () => {
    const bucket = fresh();
    const events: LockEvent[] = [];
    const a = await locks('node-a', { onEvent: (e: LockEvent) => events.push(e) }, bucket);
    const b = await locks('node-b', { onEvent: (e: LockEvent) => events.push(e) }, bucket);
    const ttlMs = 500;
    const held = await a.acquire('crash', { ttlMs, autoRenew: false }); // a frozen holder: never refreshes
    let lostAt = 0;
    held.signal.addEventListener('abort', () => (lostAt = performance.now()));
    const t0 = performance.now();
    const got = await b.acquire('crash', { waitMs: 5000, ttlMs });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(ttlMs - 20);
    expect(took).toBeLessThan(ttlMs + 1000);
    expect(got.epoch).toBeGreaterThan(held.epoch);
    // The holder stopped believing (2/3 TTL) before the contender took over (full TTL).
    expect(held.held()).toBe(false);
    expect(lostAt).toBeGreaterThan(0);
    expect(lostAt).toBeLessThan(t0 + took);
    expect(held.signal.reason).toBeInstanceOf(LockLostError);
    await expect(held.refresh()).rejects.toBeInstanceOf(LockLostError);
    await expect(held.release()).rejects.toBeInstanceOf(NotLockOwnerError);
    const fence = createFence();
    fence.check(got.epoch, 'write');
    expect(() => fence.check(held.epoch, 'write')).toThrow(FencedError);
    expect(events.find((e) => e.type === 'acquired' && e.owner === 'node-b')).toMatchObject({
      tookOver: { owner: 'node-a', epoch: held.epoch },
    });
    expect(events.some((e) => e.type === 'lost' && e.owner === 'node-a')).toBe(true);
    await got.release();
  });

  it('auto-renew keeps a lock far beyond its TTL', async () => {
    const bucket = fresh();
    const registry = new Registry();
    const a = await locks('node-a', { registry }, bucket);
    const b = await locks('node-b', {}, bucket);
    const lease = await a.acquire('keep', { ttlMs: 300 });
    const rev0 = lease.revision;
    await new Promise((r) => setTimeout(r, 1200));
    expect(lease.held()).toBe(true);
    expect(lease.revision).toBeGreaterThan(rev0);
    expect(await b.tryAcquire('keep')).toBeNull();
    expect(await registry.getSingleMetricAsString('gc_locks_held')).toMatch(/gc_locks_held\{[^}]*\} 1/);
    await lease.release();
    expect(await registry.getSingleMetricAsString('gc_locks_held')).toMatch(/gc_locks_held\{[^}]*\} 0/);
  });

  it('semaphores never grant more than their permits and refuse a different count', async () => {
    const bucket = fresh();
    const owners = await Promise.all(['n1', 'n2', 'n3', 'n4'].map((o) => locks(o, {}, bucket)));
    const sems = owners.map((l) => l.semaphore('pool', { permits: 2 }));
    const l1 = await sems[0]!.acquire();
    const l2 = await sems[1]!.acquire();
    expect(new Set([l1.slot, l2.slot])).toEqual(new Set([0, 1]));
    expect(await sems[2]!.tryAcquire()).toBeNull();
    expect((await sems[3]!.holders()).map((h) => h.owner).sort()).toEqual(['n1', 'n2']);
    const waiting = sems[2]!.acquire({ waitMs: 5000 });
    await l1.release();
    const l3 = await waiting;
    expect(l3.slot).toBe(l1.slot);
    expect(l3.epoch).toBe(l1.epoch + 1);
    expect((await owners[0]!.holders()).length).toBe(2);
    const other = await locks('n5', {}, bucket);
    await expect(other.semaphore('pool', { permits: 3 }).tryAcquire()).rejects.toBeInstanceOf(
      PermitsMismatchError,
    );
    expect(() => owners[0]!.semaphore('pool', { permits: 5 })).toThrow(/has 2 permits/);
    await l2.release();
    await l3.release();
  });

  it('forceRelease frees a lock, records who and why, and the holder loses its lease', async () => {
    const bucket = fresh();
    const a = await locks('node-a', {}, bucket);
    const admin = await locks('gc-cli', {}, bucket);
    const lease = await a.acquire('stuck', { ttlMs: 60_000 });
    const before = await admin.forceRelease('stuck', { reason: 'holder wedged, ticket 42' });
    expect(before).toMatchObject({ owner: 'node-a', epoch: lease.epoch, state: 'held' });
    const info = await admin.info('stuck');
    expect(info).toMatchObject({
      state: 'free',
      released: { by: 'gc-cli', reason: 'holder wedged, ticket 42', forced: true },
    });
    await expect(lease.refresh()).rejects.toBeInstanceOf(LockLostError);
    expect((lease.signal.reason as LockLostError).reason).toMatch(/force-released by gc-cli: holder wedged/);
    expect(await admin.forceRelease('stuck', { reason: 'again' })).toBeNull();
    const next = await admin.acquire('stuck');
    expect(next.epoch).toBe(lease.epoch + 1);
    await next.release();
  });

  it('epochs keep increasing when a lock key is deleted behind gc’s back', async () => {
    const bucket = fresh();
    const a = await locks('node-a', {}, bucket);
    const l1 = await a.acquire('del');
    await l1.release();
    const kv = await new Kvm(nats.nc).open(bucket);
    await kv.purge('del'); // an operator's `nats kv purge`
    const l2 = await a.acquire('del');
    expect(l2.epoch).toBe(l1.epoch + 1);
    await l2.release();
  });

  it('close() releases held leases at once and is idempotent; closed() resolves after it', async () => {
    const bucket = fresh();
    const a = await createLocks(nats.nc, { bucket, owner: 'node-a' });
    const b = await locks('node-b', {}, bucket);
    await a.acquire('c1', { ttlMs: 60_000 });
    await a.semaphore('c2', { permits: 1 }).acquire({ ttlMs: 60_000 });
    await assertClosesOnce(a);
    expect((await b.tryAcquire('c1'))?.epoch).toBe(2);
    expect(await b.holders()).toHaveLength(1);
    await expect(a.acquire('c1')).rejects.toMatchObject({ code: 'GC_CLOSED' });
  });
});
