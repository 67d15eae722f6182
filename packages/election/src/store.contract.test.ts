import { connect, realClock } from '@gc/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { assertClosesOnce, startServer, waitFor, type NatsServer } from '@gc/testkit';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseConflictError } from './errors.js';
import { MemoryLeaseBackend } from './memory-store.js';
import { openKvLeaseStore } from './kv-store.js';
import type { LeaseEntry, LeaseStore } from './store.js';
import type { LeaseRecord } from './types.js';

// The same contract, run against NATS KV on a real nats-server and against the in-process store that the
// fake-clock unit tests use: this is what makes those unit tests trustworthy.

const rec = (holder: string, epoch: number): LeaseRecord => ({
  holder,
  instance: `i-${holder}`,
  epoch,
  ttlMs: 3000,
  live: false,
  priority: 10,
  grantedAt: 0,
});

let server: NatsServer;
let nc: NatsConnection;
let n = 0;
beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: server.url, name: 'contract' });
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
});

/** A NATS KV lease store on bucket `bucket` of this file's server (key `leader`, one replica). */
const kvStore = (bucket: string) =>
  openKvLeaseStore(nc, { bucket, key: 'leader', replicas: 1, timeoutMs: 2000 });

const impls: Array<[string, () => Promise<LeaseStore>]> = [
  ['memory', async () => new MemoryLeaseBackend(realClock).connect('m')],
  ['nats kv', () => kvStore(`contract_${++n}`)],
];

for (const [name, open] of impls) {
  describe(`LeaseStore contract: ${name}`, () => {
    it('creates, renews and deletes only on the expected revision', async () => {
      const s = await open();
      expect(await s.get(1000)).toBeNull();
      const r1 = await s.put(rec('a', 1), 0, 1000);
      await expect(s.put(rec('b', 2), 0, 1000)).rejects.toBeInstanceOf(LeaseConflictError);
      const r2 = await s.put(rec('a', 1), r1, 1000);
      expect(r2).toBeGreaterThan(r1);
      await expect(s.put(rec('b', 2), r1, 1000)).rejects.toMatchObject({
        code: 'GC_ELECTION_LEASE_CONFLICT',
      });
      expect(await s.get(1000)).toEqual({ revision: r2, record: rec('a', 1) });
      await expect(s.delete(r1, rec('a', 1), 1000)).rejects.toBeInstanceOf(LeaseConflictError);
      await s.delete(r2, rec('a', 1), 1000);
      const del = (await s.get(1000))!;
      expect(del.record).toBeNull();
      expect(del.releasedEpoch).toBe(1);
      const r4 = await s.put(rec('b', 2), del.revision, 1000);
      expect((await s.get(1000))?.record?.holder).toBe('b');
      expect(r4).toBeGreaterThan(del.revision);
      await s.close();
    });

    it('watch delivers the current entry and then every change in order', async () => {
      const s = await open();
      const r1 = await s.put(rec('a', 1), 0, 1000);
      const seen: LeaseEntry[] = [];
      const stop = s.watch(
        (e) => seen.push(e),
        () => undefined,
      );
      await waitFor(() => seen.length === 1, { timeoutMs: 5000, message: 'initial entry' });
      const r2 = await s.put(rec('a', 1), r1, 1000);
      await s.delete(r2, rec('a', 1), 1000);
      await waitFor(() => seen.length >= 3, { timeoutMs: 5000, message: 'two changes' });
      expect(seen.map((e) => [e.revision, e.record?.holder ?? null])).toEqual([
        [r1, 'a'],
        [r2, 'a'],
        [r2 + 1, null],
      ]);
      stop();
      await s.close();
    });

    it('liveness: no responders until served, then the epoch, then none again', async () => {
      const s = await open();
      expect(await s.probe(500)).toEqual({ kind: 'absent' });
      const stop = s.serveLiveness(() => 7);
      await nc.flush();
      expect(await s.probe(500)).toEqual({ kind: 'alive', epoch: 7 });
      stop();
      await nc.flush();
      expect(await s.probe(500)).toEqual({ kind: 'absent' });
      await s.close();
    });

    it('closed() is pending until close(), then resolved; close() twice is fine', async () => {
      const s = await open();
      s.watch(
        () => undefined,
        () => undefined,
      );
      await assertClosesOnce(s);
    });
  });
}

describe('NATS KV store on this server', () => {
  it('gives lease writes no per-key TTL and the bucket no delete markers: a lease never expires on the server', async () => {
    const s = await kvStore('ttl_probe');
    const jsm = await jetstreamManager(nc);
    const cfg = (await jsm.streams.info('KV_ttl_probe')).config;
    expect(cfg.subject_delete_marker_ttl ?? 0).toBe(0);
    const r1 = await s.put({ ...rec('a', 1), ttlMs: 1000 }, 0, 1000);
    const m = await jsm.streams.getMessage('KV_ttl_probe', { seq: r1 });
    expect(m?.header?.get('Nats-TTL') ?? '').toBe('');
    await new Promise((r) => setTimeout(r, 2200)); // past any whole-second TTL the old code would have sent
    expect((await s.get(1000))?.revision).toBe(r1);
    await s.close();
  });

  it('a watch that restarts does not deliver the current entry twice', async () => {
    const s = await kvStore('watch_restart');
    const jsm = await jetstreamManager(nc);
    const r1 = await s.put(rec('a', 1), 0, 1000);
    const seen: number[] = [];
    const errors: Error[] = [];
    const stop = s.watch(
      (e) => seen.push(e.revision),
      (err) => errors.push(err),
    );
    await waitFor(() => seen.length === 1, { timeoutMs: 5000, message: 'initial entry' });
    // Deleting the watch's consumer ends it (no more heartbeats); the next one starts at the current entry.
    for await (const c of jsm.consumers.list('KV_watch_restart'))
      await jsm.consumers.delete('KV_watch_restart', c.name);
    await waitFor(() => errors.length > 0, {
      timeoutMs: 10_000,
      message: 'the watch to notice its consumer gone',
    });
    await waitFor(
      async () => {
        for await (const _c of jsm.consumers.list('KV_watch_restart')) return true;
        return false;
      },
      { timeoutMs: 10_000, message: 'a new watch consumer' },
    );
    const r2 = await s.put(rec('a', 1), r1, 1000);
    await waitFor(() => seen.includes(r2), { timeoutMs: 5000, message: 'the change after the restart' });
    expect(seen).toEqual([r1, r2]);
    stop();
    await s.close();
  });

  it('onReconnect fires when the connection comes back after a server restart', async () => {
    const s = await kvStore('reconnect_probe');
    let n = 0;
    const stop = s.onReconnect(() => n++);
    await server.restart('SIGKILL');
    await waitFor(() => n > 0, { timeoutMs: 15_000, message: 'a reconnect' });
    stop();
    await s.close();
  });
});
