import { connect, supports } from '@gc/core';
import { createElection, type Election } from '@gc/election';
import { openKvLeaseStore } from '@gc/election/internal';
import { startServer, waitFor, type NatsServer } from '@gc/testkit';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory, grantIntervals, overlaps, type HistoryEvent } from './history.js';

// Issue 18: on nats-server ≥ 2.11 a CAS update of a key, made right when the previous revision's per-key TTL
// (`Nats-TTL`) runs out, can be followed by a subject delete marker that removes the update.
//
// Root cause (nats-server `fileStore.expireMsgs`, the same in memstore, 2.11 … 2.15): the expiry checks under
// the store lock that the expired message is still the last one of its subject, drops the lock, and then
// proposes a marker (`Nats-Marker-Reason: MaxAge`, `Nats-Rollup: sub`, no expected sequence) through the
// normal publish path. A CAS update that is stored between the check and the marker passes its own check
// (the old revision is still the last), and the marker, stored after it, rolls the subject up: the update
// is gone and the key reads as deleted. The election used to give every lease write a per-key TTL and to let
// contenders create on a deletion when they had seen the previous holder's revision for a full TTL — the
// takeover hidden by the marker was never seen, so a second node got in.

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
const enc = new TextEncoder();
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: server.url, name: 'e2e-ttl-marker' });
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
});

describe('per-key TTL expiry racing a CAS takeover (KV level)', () => {
  it('reproduces the server behaviour: a delete marker lands after a successful CAS update and removes it', async () => {
    if (!supports(nc, 'per-key-ttl')) return; // 2.10: no per-key TTL, no markers
    const js = jetstream(nc);
    const lanes = 2;
    for (let b = 0; b < lanes; b++) await new Kvm(js).create(`race${b}`, { history: 1, markerTTL: 1000 });
    const stats = { trials: 0, takeovers: 0, tooLate: 0, markers: [] as string[] };
    // Each lane plays "old leader renews with a 1 s TTL, then stops" and "contender CASes on that revision
    // right when it expires". The send instant is steered towards the edge where the expiry and the update
    // meet (too late: the CAS fails on the marker; too early: the update wins cleanly).
    const lane = async (b: number) => {
      const subj = `$KV.race${b}.leader`;
      let offset = -0.3; // ms relative to the revision's expiry as estimated from its publish round trip
      const until = performance.now() + 60_000;
      for (let i = 0; i < 60 && stats.markers.length === 0 && performance.now() < until; i++) {
        stats.trials++;
        let rev = 0;
        let sent = 0;
        for (let k = 0; k < 3; k++) {
          const t0 = performance.now();
          rev = (
            await js.publish(subj, enc.encode('old'), { expect: { lastSubjectSequence: rev }, ttl: '1s' })
          ).seq;
          sent = (t0 + performance.now()) / 2;
          if (k < 2) await sleep(300);
        }
        const target = sent + 1000 + offset + (Math.random() - 0.5) * 0.6;
        await sleep(target - performance.now() - 4);
        while (performance.now() < target) {
          /* spin the last few ms: timers are too coarse for a sub-millisecond aim */
        }
        const taken = await js
          .publish(subj, enc.encode('new'), { expect: { lastSubjectSequence: rev }, ttl: '1s' })
          .then((a) => a.seq)
          .catch(() => null);
        if (taken === null) {
          stats.tooLate++;
          offset -= 0.15;
        } else {
          stats.takeovers++;
          offset += 0.05;
          await sleep(50);
          const last = await jsm.streams.getMessage(`KV_race${b}`, { last_by_subj: subj });
          if (last && last.seq > taken && last.header?.get('Nats-Marker-Reason')) {
            stats.markers.push(
              `takeover rev ${taken} (CAS on ${rev}) then marker rev ${last.seq} ${last.header.get('Nats-Marker-Reason')}`,
            );
          }
        }
        await jsm.streams.purge(`KV_race${b}`);
        await sleep(20);
      }
    };
    await Promise.all(Array.from({ length: lanes }, (_, b) => sleep(b * 150).then(() => lane(b))));
    console.log(`[ttl-marker] nats-server ${server.version}: ${JSON.stringify(stats)}`);
    expect(stats.markers.length, JSON.stringify(stats)).toBeGreaterThan(0);
  }, 90_000);

  it('the election no longer gives lease records a per-key TTL: the server never expires (or marks) a lease', async () => {
    const store = await openKvLeaseStore(nc, {
      bucket: 'nottl',
      key: 'leader',
      replicas: 1,
      timeoutMs: 2000,
    });
    const record = {
      holder: 'a',
      instance: 'i',
      epoch: 1,
      ttlMs: 1000,
      live: false,
      priority: 10,
      grantedAt: 0,
    };
    const r1 = await store.put(record, 0, 1000);
    const r2 = await store.put(record, r1, 1000);
    const msg = await jsm.streams.getMessage('KV_nottl', { seq: r2 });
    expect(msg?.header?.get('Nats-TTL') ?? '').toBe('');
    const info = await jsm.streams.info('KV_nottl');
    expect(info.config.subject_delete_marker_ttl ?? 0).toBe(0);
    await sleep(2500);
    expect(await store.get(1000)).toEqual({ revision: r2, record });
    await store.close();
  });
});

/**
 * A writer that behaves like a gc node of an earlier version (or any writer that gives the lease a per-key
 * TTL): it creates and renews the lease record with `Nats-TTL: 1s`; it stops renewing (as if SIGSTOPped)
 * whenever the caller stops calling `renew()`.
 */
async function oldLeader(bucket: string, key: string, epoch: number) {
  const js = jetstream(nc);
  const subj = `$KV.${bucket}.${key}`;
  const record = () =>
    enc.encode(
      JSON.stringify({
        holder: 'old',
        instance: 'old',
        epoch,
        ttlMs: 1000,
        live: false,
        priority: 10,
        grantedAt: Date.now(),
      }),
    );
  let rev = 0;
  const renew = async () => {
    rev = (await js.publish(subj, record(), { expect: { lastSubjectSequence: rev }, ttl: '1s' })).seq;
    return rev;
  };
  await renew();
  return { renew, revision: () => rev };
}

describe('election: a marker that follows a takeover never lets a second node in', () => {
  const ROUNDS = Number(process.env.GC_MARKER_ROUNDS ?? (process.env.GC_LONG_TESTS === '1' ? 60 : 8));
  const LANES = Number(process.env.GC_MARKER_LANES ?? 1);
  it(
    `${LANES} x ${ROUNDS} rounds of "an old TTL'd leader stops; 5 contenders race its expiry": no overlapping leadership`,
    async () => {
      if (!supports(nc, 'per-key-ttl')) return;
      const conns = await Promise.all(
        Array.from({ length: 5 }, (_, i) => connect({ servers: server.url, name: `c${i}` })),
      );
      const events: HistoryEvent[] = [];
      const stats = { rounds: 0, takeovers: 0, creates: 0, markersAfterTakeover: 0, grants: 0 };
      const debug = process.env.GC_DEBUG_MARKER === '1';
      const lane = async (l: number) => {
        let delayMs = 2; // how long after its TTL the server expires the old leader's last renew
        for (let r = 0; r < ROUNDS; r++) {
          const round = `${l}.${r}`;
          const bucket = `mr${l}_${r}`;
          const key = 'leader';
          await new Kvm(jetstream(nc)).create(bucket, { history: 1, markerTTL: 1000 });
          const old = await oldLeader(bucket, key, 1_000_000 + l * 100_000 + r * 1000);
          const w1 = performance.now();
          const elections: Election[] = await Promise.all(
            conns.map((c, i) =>
              createElection(c, {
                bucket,
                key,
                nodeId: `l${l}c${i}`,
                ttlMs: 1000,
                pollIntervalMs: 50,
                wallClockEpochFloor: false,
              }),
            ),
          );
          for (const e of elections) {
            const push = (type: string, d: object) =>
              events.push({ type, node: e.nodeId, at: now(), ...d, round });
            e.on('acquired', (d) => push('acquired', d));
            e.on('renewed', (d) => push('renewed', d));
            e.on('lost', (d) => push('lost', d));
            e.on('stepped-down', (d) => push('stepped-down', d));
            e.on('leader', (d) => push('leader', d));
          }
          const sampler = setInterval(() => {
            for (const e of elections) {
              if (e.isLeader()) events.push({ type: 'act', node: e.nodeId, at: now(), epoch: e.epoch() });
            }
          }, 1);
          // Steer the server's expiry of the last renew onto the contenders' takeover. The server's expiry
          // timer never fires sooner than 250 ms after its previous run (which, with these renews, comes at
          // the second renew's TTL), so a renew made `250 - d` ms after the previous one expires about d ms
          // after its own TTL. The contenders send their CAS a TTL after they saw that renew.
          await sleep(w1 + 900 - performance.now());
          await old.renew();
          const w2 = performance.now();
          const gap = 250 - delayMs;
          await sleep(w2 + gap - performance.now() - 4);
          while (performance.now() < w2 + gap) {
            /* spin: sub-millisecond aim */
          }
          await old.renew();
          await waitFor(() => elections.some((e) => e.isLeader()), {
            timeoutMs: 5000,
            message: `a leader in round ${round}`,
          });
          await sleep(1300); // a second grant after a marker would come within this
          clearInterval(sampler);
          await Promise.all(elections.map((e) => e.close()));
          await jsm.streams.delete(`KV_${bucket}`);
          const mine = events.filter((e) => e.round === round);
          const first = mine.find((e) => e.type === 'acquired');
          const took = mine.filter((e) => e.type === 'acquired' && e.via === 'takeover');
          const wiped = took.filter((t) =>
            mine.some(
              (e) => e.type === 'leader' && e.holder === null && e.revision === (t.revision as number) + 1,
            ),
          );
          stats.rounds++;
          stats.takeovers += took.length;
          stats.creates += first?.via === 'create' ? 1 : 0;
          stats.markersAfterTakeover += wiped.length;
          // Aim: a clean takeover means the expiry came late, a create means it came first.
          if (wiped.length === 0)
            delayMs = Math.min(8, Math.max(0.2, delayMs + (first?.via === 'create' ? 0.3 : -0.3)));
          if (debug)
            console.log(
              `round ${round} delay ${delayMs.toFixed(1)} first ${String(first?.via)} wiped ${wiped.length}`,
            );
        }
      };
      try {
        await Promise.all(Array.from({ length: LANES }, (_, l) => sleep(l * 1100).then(() => lane(l))));
      } finally {
        await Promise.all(conns.map((c) => c.close()));
      }
      stats.grants = events.filter((e) => e.type === 'acquired').length;
      const problems: string[] = [];
      for (let l = 0; l < LANES; l++) {
        const laneEvents = events.filter((e) => e.node.startsWith(`l${l}c`));
        problems.push(...checkHistory(laneEvents), ...overlaps(grantIntervals(laneEvents, 667)));
      }
      console.log(
        `[ttl-marker election] ${JSON.stringify(stats)}; problems ${problems.length}: ${problems.slice(0, 5).join('; ')}`,
      );
      expect(problems).toEqual([]);
      expect(stats.grants).toBeGreaterThanOrEqual(LANES * ROUNDS);
    },
    30_000 + ROUNDS * LANES * 8000,
  );
});
