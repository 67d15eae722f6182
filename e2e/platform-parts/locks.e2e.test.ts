// @gc/locks across processes on real nats-server: a SIGKILLed holder loses the lock after its TTL and the
// waiting contender gets it with a higher epoch; mutual exclusion and semaphore permits hold over many
// rounds of several processes (the interval history is checked).
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { serverFlavors, spawnNode, type ChildNode, type NatsServer } from '@gc/testkit';
import { useServer } from '../test/server.js';

const fixture = fileURLToPath(new URL('./fixtures/locks-node.ts', import.meta.url));
const flavors = serverFlavors('[platform-parts] skipping the 2.10.x lock crash run: no 2.10 binary');

interface Round {
  owner: string;
  epoch: number;
  slot: number | null;
  start: number;
  end: number;
  stillHeld: boolean;
}

function spawn(server: NatsServer, env: Record<string, string>): ChildNode {
  return spawnNode(fixture, { env: { NATS_URL: server.url, ...env }, label: `locks-${env.OWNER}` });
}

/** Runs one fixture process per owner with `env` until each says done; every round they reported. */
async function roundsOf(server: NatsServer, owners: string[], env: Record<string, string>): Promise<Round[]> {
  const children = owners.map((o) => spawn(server, { ...env, OWNER: o }));
  await Promise.all(
    children.map((c) => c.waitForMessage<{ type: string }>((m) => m.type === 'done', 60_000)),
  );
  return children.flatMap((c) => c.messages<Round & { type: string }>().filter((m) => m.type === 'round'));
}

/** Largest number of intervals open at one instant. */
function maxConcurrent(rounds: Round[]): number {
  const points = rounds.flatMap((r) => [
    { t: r.start, d: 1 },
    { t: r.end, d: -1 },
  ]);
  points.sort((a, b) => a.t - b.t || a.d - b.d); // an end before a start at the same instant
  let cur = 0;
  let max = 0;
  for (const p of points) max = Math.max(max, (cur += p.d));
  return max;
}

describe.each(flavors)('locks across processes (nats-server %s)', (flavor) => {
  const nats = useServer({ connect: false, server: { flavor } });

  it('a SIGKILLed holder loses the lock after its TTL and the waiting contender gets a higher epoch', async () => {
    const ttlMs = 1500;
    const pollMs = 250; // the fixture's pollIntervalMs (safety net only)
    const common = { BUCKET: 'pp_kill_locks', LOCK: 'leader', TTL_MS: String(ttlMs) };
    const holder = spawn(nats.server, { ...common, OWNER: 'holder', MODE: 'hold' });
    const first = await holder.waitForMessage<{ type: string; epoch: number }>((m) => m.type === 'acquired');
    const contender = spawn(nats.server, {
      ...common,
      OWNER: 'contender',
      MODE: 'contend',
      WAIT_MS: '20000',
    });
    await contender.waitForMessage<{ type: string }>((m) => m.type === 'waiting');
    // Let the contender watch the holder renew for a while: a live holder keeps the lock.
    await new Promise((r) => setTimeout(r, ttlMs * 1.5));
    expect(contender.messages<{ type: string }>().some((m) => m.type === 'acquired')).toBe(false);
    const killedAt = performance.now();
    await holder.kill();
    const got = await contender.waitForMessage<{ type: string; epoch: number; owner: string }>(
      (m) => m.type === 'acquired',
      ttlMs + 10_000,
    );
    const tookMs = performance.now() - killedAt;
    console.log(
      `[locks e2e ${flavor}] holder SIGKILLed; contender got the lock after ${Math.round(tookMs)} ms (TTL ${ttlMs} ms)`,
    );
    expect(got.owner).toBe('contender');
    expect(got.epoch).toBeGreaterThan(first.epoch);
    // The last refresh was at most TTL/3 before the kill, so the takeover comes at least 2/3 TTL after it,
    // and at most one TTL (plus a poll and scheduling slack) after it.
    expect(tookMs).toBeGreaterThanOrEqual((2 * ttlMs) / 3 - 50);
    expect(tookMs).toBeLessThanOrEqual(ttlMs + pollMs + 500);
    await contender.stop();
  });

  it('two owners never hold the same lock at once over many rounds', async () => {
    const owners = ['m1', 'm2', 'm3'];
    const rounds = await roundsOf(nats.server, owners, {
      BUCKET: 'pp_mutex_locks',
      LOCK: 'mx',
      MODE: 'mutex',
      ROUNDS: '25',
      HOLD_MS: '6',
    });
    expect(rounds).toHaveLength(75);
    expect(rounds.every((r) => r.stillHeld)).toBe(true);
    // Epochs are unique and their order is the order of the intervals, which never overlap.
    const byEpoch = [...rounds].sort((a, b) => a.epoch - b.epoch);
    expect(new Set(byEpoch.map((r) => r.epoch)).size).toBe(75);
    for (let i = 1; i < byEpoch.length; i++) {
      expect(
        byEpoch[i]!.start,
        `round epoch ${byEpoch[i]!.epoch} starts after ${byEpoch[i - 1]!.epoch} ended`,
      ).toBeGreaterThanOrEqual(byEpoch[i - 1]!.end);
    }
    expect(maxConcurrent(rounds)).toBe(1);
    expect(new Set(rounds.map((r) => r.owner))).toEqual(new Set(owners));
  });

  it('a semaphore never exceeds its permits over many rounds', async () => {
    const owners = ['s1', 's2', 's3', 's4', 's5'];
    const rounds = await roundsOf(nats.server, owners, {
      BUCKET: 'pp_sem_locks',
      LOCK: 'pool',
      MODE: 'sem',
      PERMITS: '2',
      ROUNDS: '15',
      HOLD_MS: '10',
    });
    expect(rounds).toHaveLength(75);
    expect(maxConcurrent(rounds)).toBeLessThanOrEqual(2);
    expect(maxConcurrent(rounds)).toBe(2); // the permits were really used in parallel
    for (const slot of [0, 1]) {
      const s = rounds.filter((r) => r.slot === slot).sort((a, b) => a.epoch - b.epoch);
      for (let i = 1; i < s.length; i++) expect(s[i]!.start).toBeGreaterThanOrEqual(s[i - 1]!.end);
    }
  });
});
