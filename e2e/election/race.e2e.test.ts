import { connect } from '@gc/core';
import { createElection, type Election } from '@gc/election';
import { findNatsServer, startServer, waitFor } from '@gc/testkit';
import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { now, Scenario } from './fixtures.js';
import { checkHistory, serveFencedRegister } from './history.js';
import { useServer } from '../test/server.js';

// Contenders in child processes racing for one lease on a real nats-server; server restarts under running
// elections; the same election on the 2.10.x server (no per-key TTL).

const nats = useServer({ connect: (url) => connect({ servers: url, name: 'e2e-race' }) });

describe('election race', () => {
  it('5 contenders racing for a freed lease 200 times never produce two winners', async () => {
    const rounds = 200;
    const register = serveFencedRegister(nats.nc, 'e2e.race.register');
    const sc = new Scenario();
    const env = {
      NATS_URLS: nats.server.url,
      BUCKET: 'race',
      TTL_MS: '3000',
      POLL_MS: '100',
      COOLDOWN_MS: '0',
      ACT_MS: '5',
      REGISTER: register.subject,
    };
    await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => sc.start(id, env)));
    await waitFor(() => sc.leader(), { timeoutMs: 10_000, message: 'first leader' });
    const winners = new Set<string>();
    for (let r = 0; r < rounds; r++) {
      const leader = sc.leader()!;
      const before = sc.acquisitions(0).length;
      leader.child.send({ cmd: 'stepDown' });
      await waitFor(() => sc.acquisitions(0).length > before, {
        timeoutMs: 10_000,
        intervalMs: 2,
        message: `a winner in round ${r}`,
      });
      winners.add(sc.leader()?.id ?? '?');
    }
    // Let any second winner of the last round report itself.
    const settleFrom = now();
    await waitFor(() => sc.history().some((e) => e.type === 'act' && e.at > settleFrom + 200), {
      timeoutMs: 5000,
    });
    const acq = sc.acquisitions(0);
    expect(acq).toHaveLength(rounds + 1); // one winner per round, plus the first grant
    const epochs = acq.map((e) => e.epoch!);
    expect(epochs).toEqual([...epochs].sort((a, b) => a - b));
    expect(new Set(epochs).size).toBe(epochs.length);
    expect(checkHistory(sc.history())).toEqual([]);
    expect(winners.size).toBeGreaterThan(1); // a real race: different nodes won
    expect(register.writes.length).toBeGreaterThan(rounds / 4);
    expect(register.writes.filter((w) => !w.accepted)).toEqual([]);
    register.close();
    await sc.stopAll();
  });
});

async function electionConsumers(bucket: string): Promise<number> {
  const jsm = await jetstreamManager(nats.nc);
  const info = await jsm.streams.info(`KV_${bucket}`);
  return info.state.consumer_count;
}

describe('election across server restarts', () => {
  it('keeps one leader, resumes watches and does not leak consumers over 3 restarts (SIGTERM and SIGKILL)', async () => {
    const timing = { ttlMs: 1500, pollIntervalMs: 100 };
    const conns = await Promise.all(
      ['r1', 'r2', 'r3'].map((id) =>
        connect({ servers: nats.server.url, name: id, reconnectTimeWaitMs: 100 }),
      ),
    );
    const elections: Election[] = await Promise.all(
      conns.map((c, i) =>
        createElection(c, { bucket: 'restarts', nodeId: `r${i + 1}`, ...timing, observeOnly: i === 2 }),
      ),
    );
    const leaders = () => elections.filter((e) => e.isLeader());
    const renewals: number[] = [];
    const releases: boolean[] = [];
    for (const e of elections) {
      e.on('renewed', () => renewals.push(now()));
      e.on('stepped-down', ({ released }) => releases.push(released));
    }
    await waitFor(() => leaders().length === 1, { timeoutMs: 5000, message: 'a leader' });
    const observer = elections[2]!;
    for (const signal of ['SIGTERM', 'SIGKILL', 'SIGTERM'] as const) {
      await nats.server.restart(signal);
      const t0 = now();
      // A leader again, renewing on the restarted server, within TTL + 2 s.
      await waitFor(() => leaders().length === 1 && renewals.some((t) => t > t0), {
        timeoutMs: timing.ttlMs + 2000,
        message: `a renewing leader after restart (${signal})`,
      });
      // Watches resumed: one consumer per follower or observer (a leader does not watch its own key), no
      // leftovers from before the restart.
      let consumers = -1;
      await waitFor(
        async () =>
          leaders().length === 1 &&
          (consumers = await electionConsumers('restarts')) === elections.length - 1,
        { timeoutMs: 10_000, message: `one watch consumer per non-leader (after ${signal})` },
      ).catch(async (err: unknown) => {
        const jsm = await jetstreamManager(nats.nc);
        const list = await jsm.consumers.list('KV_restarts').next();
        const desc = list.map(
          (c) =>
            `${c.name} bound=${c.push_bound} inactive=${c.config.inactive_threshold} created=${c.created}`,
        );
        throw new Error(
          `${(err as Error).message}; last count ${consumers}, leaders ${leaders().length}; ${desc.join(' | ')}`,
        );
      });
      const old = leaders()[0]!;
      await old.stepDown();
      expect(releases.at(-1)).toBe(true);
      await waitFor(() => leaders().length === 1 && leaders()[0] !== old, {
        timeoutMs: 5000,
        message: 'hand-over',
      });
      await waitFor(() => observer.leader().holder === leaders()[0]!.nodeId, {
        timeoutMs: 5000,
        message: 'observer sees the new leader',
      });
      expect(leaders()).toHaveLength(1);
    }
    await Promise.all(elections.map((e) => e.close()));
    await waitFor(async () => (await electionConsumers('restarts')) === 0, {
      timeoutMs: 10_000,
      message: 'watch consumers gone after close',
    });
    await Promise.all(conns.map((c) => c.close()));
  });
});

describe('election on nats-server 2.10 (no per-key TTL)', () => {
  const bin = findNatsServer('2.10');
  if (!bin)
    console.warn(
      '[election e2e] skipping the 2.10 test: no nats-server 2.10.x binary (.tools/bin/nats-server-2.10 or NATS_SERVER_BIN_2_10)',
    );
  it.skipIf(!bin)('elects, hands over and fails over by revision timing alone', async () => {
    const old = await startServer({ flavor: '2.10' });
    expect(old.version).toMatch(/^2\.10\./);
    const c1 = await connect({ servers: old.url, name: 'a' });
    const c2 = await connect({ servers: old.url, name: 'b' });
    const a = await createElection(c1, { bucket: 'compat', nodeId: 'a', ttlMs: 1000 });
    await a.waitForLeadership(5000);
    const b = await createElection(c2, { bucket: 'compat', nodeId: 'b', ttlMs: 1000 });
    await a.stepDown();
    expect(await b.waitForLeadership(5000)).toBeGreaterThan(0);
    // Crash b: its connection closes without a step-down; a takes over after the TTL on its own clock.
    const lastRenew = now();
    await c2.close();
    const epoch = await a.waitForLeadership(5000);
    expect(epoch).toBeGreaterThan(b.epoch());
    expect(now() - lastRenew).toBeGreaterThan(1000 - 400); // not before TTL minus one renew interval
    await a.close();
    await b.close().catch(() => undefined);
    await c1.close();
    await old.close();
  });
});
