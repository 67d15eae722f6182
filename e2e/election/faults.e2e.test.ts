import { connect } from '@gc/core';
import { ChaosProxy, makeTempDir, sleep, waitFor } from '@gc/testkit';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { headers } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { now, Scenario, type ElectionNode } from './fixtures.js';
import { checkHistory, serveFencedRegister, type HistoryEvent } from './history.js';
import { useServer } from '../test/server.js';

// Fault scenarios R2, R3, R9, R10 and R15 of the quality bars, with leaders in child processes, real
// signals, a TCP proxy that cuts links, and a fenced register that every leader writes to.

const TTL = 1000; // renew every 333 ms, demote after 667 ms (defaults derived from the TTL)
const DEADLINE = 667;

const nats = useServer({ connect: (url) => connect({ servers: url, name: 'e2e-faults' }) });

const baseEnv = (bucket: string, register?: string): Record<string, string> => ({
  NATS_URLS: nats.server.url,
  BUCKET: bucket,
  TTL_MS: String(TTL),
  POLL_MS: '100',
  ACT_MS: '10',
  ...(register ? { REGISTER: register } : {}),
});

function eventsOf(node: ElectionNode, type: string): HistoryEvent[] {
  return node.events().filter((e) => e.type === type);
}

describe('fault scenarios', () => {
  it('R2: SIGSTOP the leader for 1.5 x TTL: a new leader; after SIGCONT the old one demotes first and its writes are fenced', async () => {
    const register = serveFencedRegister(nats.nc, 'e2e.r2.register');
    const sc = new Scenario();
    const old = await sc.start('n1', baseEnv('r2', register.subject));
    await waitFor(() => sc.leader() === old, { timeoutMs: 10_000, message: 'n1 leads' });
    await Promise.all(['n2', 'n3'].map((id) => sc.start(id, baseEnv('r2', register.subject))));
    const oldEpoch = eventsOf(old, 'acquired')[0]!.epoch!;
    old.child.pause();
    const pausedAt = now();
    await waitFor(() => sc.acquisitions(pausedAt)[0], { timeoutMs: 3 * TTL, message: 'a new leader' });
    await sleep(Math.max(0, pausedAt + 1.5 * TTL - now()));
    old.child.resume();
    const resumedAt = now();
    const lost = await old.child.waitForMessage<HistoryEvent>((m) => m.type === 'lost', 5000, 'lost');
    expect(lost).toMatchObject({ reason: 'renew-deadline', epoch: oldEpoch });
    old.child.send({ cmd: 'blindWrite' });
    const blind = await old.child.waitForMessage<HistoryEvent>(
      (m) => m.type === 'write' && m.blind === true,
      5000,
    );
    expect(blind.result).toBe('fenced');
    // It never acted again with the old epoch after resuming.
    expect(eventsOf(old, 'act').filter((e) => e.at > resumedAt && e.epoch === oldEpoch)).toEqual([]);
    // Every write the register accepted is in epoch order; the old epoch was refused after the new one.
    const accepted = register.writes.filter((w) => w.accepted).map((w) => w.epoch);
    expect(accepted).toEqual([...accepted].sort((a, b) => a - b));
    expect(register.writes.filter((w) => !w.accepted && w.epoch === oldEpoch).length).toBeGreaterThan(0);
    expect(checkHistory(sc.history())).toEqual([]);
    register.close();
    await sc.stopAll();
  });

  it('R3: cut the leader <-> NATS link for 2 x TTL: it demotes by renewDeadline on its own clock; its late writes are fenced', async () => {
    const register = serveFencedRegister(nats.nc, 'e2e.r3.register');
    const proxy = await ChaosProxy.start({ target: { port: nats.server.port } });
    const sc = new Scenario();
    const old = await sc.start('n1', { ...baseEnv('r3', register.subject), NATS_URLS: proxy.url() });
    await waitFor(() => sc.leader() === old, { timeoutMs: 10_000, message: 'n1 leads' });
    await Promise.all(['n2', 'n3'].map((id) => sc.start(id, baseEnv('r3', register.subject))));
    await old.child.waitForMessage<HistoryEvent>((m) => m.type === 'renewed', 5000);
    proxy.cut();
    const cutAt = now();
    const lost = await old.child.waitForMessage<HistoryEvent>((m) => m.type === 'lost', 3 * TTL, 'lost');
    expect(lost.reason).toBe('renew-deadline');
    // The last renew that succeeded (its reply may have come in just as the link was cut).
    const lastGood = eventsOf(old, 'renewed')
      .filter((e) => e.at < lost.at)
      .at(-1)!;
    expect(lastGood.at).toBeLessThan(cutAt + 50);
    const lastGoodSentAt = lastGood.at - (lastGood.latencyMs as number);
    // Demoted renewDeadline after sending its last good renew (own clock = real clock here), not later.
    expect(lost.at - lastGoodSentAt).toBeGreaterThanOrEqual(DEADLINE - 5);
    expect(lost.at - lastGoodSentAt).toBeLessThanOrEqual(DEADLINE + 150);
    const next = await waitFor(() => sc.acquisitions(cutAt)[0], {
      timeoutMs: 3 * TTL,
      message: 'a new leader',
    });
    expect(next.at).toBeGreaterThan(lost.at);
    await sleep(Math.max(0, cutAt + 2 * TTL - now()));
    proxy.heal();
    // Back on the link (once reconnected): a write with its old epoch is detected and refused, never merged.
    let blind: HistoryEvent | undefined;
    for (let i = 0; i < 10 && !blind; i++) {
      const n = eventsOf(old, 'write').filter((e) => e.blind === true).length;
      old.child.send({ cmd: 'blindWrite' });
      const w = await waitFor(() => eventsOf(old, 'write').filter((e) => e.blind === true)[n], {
        timeoutMs: 5000,
      });
      if (!String(w.result).startsWith('error')) blind = w;
    }
    expect(blind?.result).toBe('fenced');
    await sleep(2 * TTL);
    expect(sc.acquisitions(cutAt).filter((e) => e.node === 'n1')).toEqual([]); // it did not grab it back
    expect(checkHistory(sc.history())).toEqual([]);
    register.close();
    await sc.stopAll();
    await proxy.close();
  });

  it('fast failover: kill -9 of a live leader is noticed by "no responders" and taken over well before the TTL', async () => {
    const sc = new Scenario();
    const env = { ...baseEnv('fast'), TTL_MS: '3000', FAST: '1' };
    const first = await sc.start('n1', env);
    await waitFor(() => sc.leader() === first, { timeoutMs: 10_000, message: 'n1 leads' });
    await sc.start('n2', env);
    // A contender counts "no responders" only from renewDeadlineMs (2000 here) after it (re)connected.
    await sleep(2300);
    const killedAt = now();
    await first.child.kill('SIGKILL');
    const acq = await waitFor(() => sc.acquisitions(killedAt)[0], {
      timeoutMs: 5000,
      message: 'fast takeover',
    });
    expect(acq.via).toBe('fast-failover');
    expect(acq.at - killedAt).toBeLessThan(1000); // TTL is 3000; probes every 100 ms, 2 needed
    expect(checkHistory(sc.history())).toEqual([]);
    await sc.stopAll();
  });

  it('R9: TTL-only failover (bucket without per-key TTL, no expiry event): takeover within TTL + poll + 50 ms', async () => {
    await new Kvm(nats.nc).create('r9', { history: 1 }); // no markerTTL: the server never expires the lease
    const sc = new Scenario();
    const env = { ...baseEnv('r9'), POLL_MS: '100' };
    await Promise.all(['n1', 'n2'].map((id) => sc.start(id, env)));
    await waitFor(() => sc.leader(), { timeoutMs: 10_000, message: 'a leader' });
    for (let r = 0; r < 3; r++) {
      const leader = sc.leader()!;
      const since = now();
      const renewed = await leader.child.waitForMessage<HistoryEvent>(
        (m) => m.type === 'renewed' && m.at > since,
        3000,
      );
      const killedAt = now();
      await leader.child.kill('SIGKILL');
      const acq = await waitFor(() => sc.acquisitions(killedAt)[0], {
        timeoutMs: 3 * TTL,
        message: 'takeover',
      });
      expect(acq.via).toBe('takeover');
      expect(acq.at - killedAt).toBeLessThanOrEqual(TTL + 100 + 50);
      expect(acq.at - renewed.at).toBeGreaterThanOrEqual(TTL - 50); // and never before a full TTL
      await sc.start(leader.id, env);
    }
    expect(checkHistory(sc.history())).toEqual([]);
    await sc.stopAll();
  });

  it('R10: the bucket is deleted and recreated under nodes holding high epochs: the next epoch is higher than any used', async () => {
    const register = serveFencedRegister(nats.nc, 'e2e.r10.register');
    const dir = await makeTempDir('r10');
    const sc = new Scenario();
    const env = (id: string) => ({ ...baseEnv('r10', register.subject), EPOCH_FILE: `${dir}/${id}.epoch` });
    await Promise.all(['n1', 'n2', 'n3'].map((id) => sc.start(id, env(id))));
    await waitFor(() => sc.leader(), { timeoutMs: 10_000, message: 'a leader' });
    const jsm = await jetstreamManager(nats.nc);
    const maxUsed = () => Math.max(...sc.acquisitions(0).map((e) => e.epoch!));
    const before = maxUsed();
    await jsm.streams.delete('KV_r10');
    const deletedAt = now();
    // The nodes recreate the bucket and elect again.
    const acq = await waitFor(() => sc.acquisitions(deletedAt)[0], {
      timeoutMs: 10_000,
      message: 'leader after deletion',
    });
    expect(acq.epoch).toBeGreaterThan(before);
    // Now every node goes away and the bucket is deleted again: a brand-new node with no epoch file still
    // picks an epoch above every one ever used (wall-clock floor).
    const highest = maxUsed();
    await sc.stopAll();
    await jsm.streams.delete('KV_r10');
    const fresh = await sc.start('fresh', {
      ...baseEnv('r10', register.subject),
      EPOCH_FILE: `${dir}/fresh.epoch`,
    });
    const freshAcq = await fresh.child.waitForMessage<HistoryEvent>((m) => m.type === 'acquired', 10_000);
    expect(freshAcq.epoch).toBeGreaterThan(highest);
    await waitFor(() => register.writes.some((w) => w.node === 'fresh' && w.accepted), { timeoutMs: 5000 });
    // A write with a lower epoch is refused by the fenced register.
    const h = headers();
    h.set('Gc-Epoch', String(highest));
    expect((await nats.nc.request(register.subject, 'stale', { headers: h, timeout: 2000 })).string()).toBe(
      'fenced',
    );
    const accepted = register.writes.filter((w) => w.accepted).map((w) => w.epoch);
    expect(accepted).toEqual([...accepted].sort((a, b) => a - b));
    expect(checkHistory(sc.history())).toEqual([]);
    register.close();
    await sc.stopAll();
  });

  it('R15: a 1.5x slow leader and a 2x fast contender (rate ratio 3 < ttl/renewDeadline 3.75) never overlap', async () => {
    const p1 = await ChaosProxy.start({ target: { port: nats.server.port } });
    const p2 = await ChaosProxy.start({ target: { port: nats.server.port } });
    const timing = { TTL_MS: '3000', RENEW_MS: '250', DEADLINE_MS: '800', POLL_MS: '100' };
    const sc = new Scenario();
    const slow = await sc.start('slow', {
      ...baseEnv('r15'),
      ...timing,
      NATS_URLS: p1.url(),
      CLOCK_RATE: String(1 / 1.5),
    });
    await waitFor(() => sc.leader() === slow, { timeoutMs: 10_000, message: 'slow leads' });
    const fast = await sc.start('fast', {
      ...baseEnv('r15'),
      ...timing,
      NATS_URLS: p2.url(),
      CLOCK_RATE: '2',
    });
    await sleep(500);
    // One round: the leader's link is cut; it stops leading before the contender takes over; the link heals.
    const failover = async (
      link: ChaosProxy,
      leader: ElectionNode,
      contender: ElectionNode,
      timeoutMs: number,
    ) => {
      link.cut();
      const cutAt = now();
      const lost = await leader.child.waitForMessage<HistoryEvent>(
        (m) => m.type === 'lost',
        10_000,
        `${leader.id} lost`,
      );
      const acq = await waitFor(() => sc.acquisitions(cutAt).find((e) => e.node === contender.id), {
        timeoutMs,
      });
      expect(lost.at).toBeLessThan(acq.at);
      link.heal();
    };
    // Round 1, the dangerous direction: the slow-clock leader is cut off, the fast-clock contender takes over.
    await failover(p1, slow, fast, 10_000);
    await sleep(1000);
    // Round 2, the other direction: the fast-clock leader is cut off, the slow contender takes over.
    await failover(p2, fast, slow, 15_000);
    expect(checkHistory(sc.history())).toEqual([]);
    await sc.stopAll();
    await Promise.all([p1.close(), p2.close()]);
  });
});
