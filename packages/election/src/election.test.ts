import {
  ClosedError,
  FakeClock,
  TimeoutError,
  memoryEpochStore,
  scaledClock,
  type Clock,
  type TimerHandle,
} from '@gc/core';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createElectionOnStore, type CreateElectionOptions } from './election.js';
import { MemoryLeaseBackend, type MemoryLeaseStore } from './memory-store.js';
import type { Election, ElectionEventName, ElectionEvents } from './types.js';
import type { ProbeResult } from './store.js';

// Every test runs on a FakeClock and the in-process lease store (same CAS semantics as NATS KV, proven by
// store.contract.test.ts). No real time passes: each timing rule is checked at exact instants.

interface Recorded {
  t: number;
  type: ElectionEventName;
  data: unknown;
}

interface TestNode {
  id: string;
  e: Election;
  store: MemoryLeaseStore;
  events: Recorded[];
  of<E extends ElectionEventName>(type: E): Array<ElectionEvents[E]>;
}

/** A clock that can be frozen like a SIGSTOPped process: time runs on, due timers wait for resume(). */
function pausableClock(base: Clock): Clock & { pause(): void; resume(): void } {
  let paused = false;
  const queued: Array<() => void> = [];
  const clock = {
    now: () => base.now(),
    wallNow: () => base.wallNow(),
    setTimeout: (fn: () => void, ms: number): TimerHandle =>
      base.setTimeout(() => (paused ? queued.push(fn) : fn()), ms),
    clearTimeout: (h: TimerHandle) => base.clearTimeout(h),
    sleep: (ms: number, signal?: AbortSignal) => base.sleep(ms, signal),
    pause: () => void (paused = true),
    resume: () => {
      paused = false;
      for (const fn of queued.splice(0)) fn();
    },
  };
  return clock;
}

class Harness {
  readonly clock = new FakeClock();
  readonly backend: MemoryLeaseBackend;
  readonly nodes: TestNode[] = [];
  /** Base-time instants at which some node reported isLeader(), with its id and epoch. */
  readonly acting: Array<{ t: number; id: string; epoch: number }> = [];

  constructor() {
    this.backend = new MemoryLeaseBackend(this.clock);
  }

  async node(id: string, opts: Partial<CreateElectionOptions> = {}): Promise<TestNode> {
    const store = this.backend.connect(id);
    const e = await createElectionOnStore(store, {
      bucket: 'b',
      nodeId: id,
      clock: this.clock,
      wallClockEpochFloor: false,
      ...opts,
    });
    const events: Recorded[] = [];
    for (const type of ['acquired', 'renewed', 'lost', 'stepped-down', 'state', 'leader'] as const) {
      e.on(type, (data) => events.push({ t: this.clock.now(), type, data }));
    }
    const n: TestNode = {
      id,
      e,
      store,
      events,
      of: <E extends ElectionEventName>(type: E) =>
        events.filter((x) => x.type === type).map((x) => x.data as ElectionEvents[E]),
    };
    this.nodes.push(n);
    await this.clock.advance(0);
    return n;
  }

  leaders(): TestNode[] {
    return this.nodes.filter((n) => n.e.isLeader());
  }

  /** Advances `ms` in `stepMs` steps; after each step at most one node may act as leader. */
  async run(ms: number, stepMs = 10): Promise<void> {
    for (let t = 0; t < ms; t += stepMs) {
      await this.clock.advance(Math.min(stepMs, ms - t));
      const acting = this.leaders();
      expect(
        acting.length,
        `two leaders at t=${this.clock.now()}: ${acting.map((n) => n.id).join(',')}`,
      ).toBeLessThanOrEqual(1);
      for (const n of acting) this.acting.push({ t: this.clock.now(), id: n.id, epoch: n.e.epoch() });
    }
  }

  /** Epochs of successive leaders strictly increase. */
  checkEpochOrder(): void {
    let last = { id: '', epoch: 0 };
    for (const a of this.acting) {
      if (a.id === last.id && a.epoch === last.epoch) continue;
      expect(a.epoch, `epoch of ${a.id} at ${a.t} after ${last.id}@${last.epoch}`).toBeGreaterThan(
        last.epoch,
      );
      last = a;
    }
  }

  /** Closes every node, moving the fake clock so that step-downs of cut-off leaders time out. */
  async close(): Promise<void> {
    let done = false;
    const all = Promise.all(this.nodes.map((n) => n.e.close())).then(() => (done = true));
    for (let i = 0; i < 100 && !done; i++) await this.clock.advance(100);
    await all;
  }
}

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('acquire and renew', () => {
  it('the first node acquires a free lease by create at once, with epoch 1', async () => {
    h = new Harness();
    const a = await h.node('a');
    expect(a.e.state()).toBe('leader');
    expect(a.e.isLeader()).toBe(true);
    expect(a.e.epoch()).toBe(1);
    expect(a.of('acquired')).toEqual([
      {
        epoch: 1,
        revision: 1,
        via: 'create',
        tookMs: 0,
        sentAt: 0,
        sentAtWallMs: h.clock.wallNow(),
        deadline: 2000,
      },
    ]);
    expect(a.e.leader()).toEqual({ holder: 'a', epoch: 1, revision: 1 });
    expect(h.backend.current()?.record).toMatchObject({ holder: 'a', epoch: 1, ttlMs: 3000, live: false });
  });

  it('renews every renewIntervalMs by CAS on the revision', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(999);
    expect(a.of('renewed')).toHaveLength(0);
    await h.run(1);
    expect(a.of('renewed')).toEqual([{ epoch: 1, revision: 2, latencyMs: 0, sentAt: 1000, deadline: 3000 }]);
    await h.run(9000);
    expect(a.of('renewed')).toHaveLength(10);
    expect(h.backend.current()?.revision).toBe(11);
    expect(a.e.isLeader()).toBe(true);
  });

  it('a second node follows and never takes over while the leader renews', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    expect(b.e.state()).toBe('follower');
    expect(b.e.leader().holder).toBe('a');
    await h.run(30_000, 50);
    expect(a.e.isLeader()).toBe(true);
    expect(b.of('acquired')).toHaveLength(0);
  });

  it('a contender that loses the create race follows', async () => {
    h = new Harness();
    const nodes = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => h.node(id)));
    await h.run(100);
    expect(nodes.filter((n) => n.e.state() === 'leader')).toHaveLength(1);
    expect(nodes.filter((n) => n.e.state() === 'follower')).toHaveLength(4);
  });
});

describe('timing rules', () => {
  it('a contender takes over only when the revision it saw stayed for a full TTL on its own clock', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(500);
    const b = await h.node('b'); // first sees revision 1 at t=500
    await h.run(400); // t=900
    a.store.cut(); // the renew at t=1000 never arrives
    await h.run(2599); // t=3499: 2999 ms since b first saw revision 1
    expect(b.e.state()).toBe('follower');
    await h.run(1); // t=3500
    expect(b.e.state()).toBe('leader');
    expect(b.of('acquired')[0]).toMatchObject({ via: 'takeover', epoch: 2 });
    h.checkEpochOrder();
  });

  it('the leader demotes renewDeadlineMs after SENDING its last successful renew, not after the reply', async () => {
    h = new Harness();
    const a = await h.node('a', { opTimeoutMs: 1000 });
    a.store.setLatency(0, 600); // replies take 600 ms
    await h.run(1000); // renew sent at t=1000, reply at 1600
    await h.run(650); // t=1650
    expect(a.of('renewed')).toEqual([
      { epoch: 1, revision: 2, latencyMs: 600, sentAt: 1000, deadline: 3000 },
    ]);
    a.store.cut(); // renew at t=2000 hangs
    await h.run(1349); // t=2999
    expect(a.e.isLeader()).toBe(true);
    await h.run(1); // t=3000 = 1000 (send) + 2000; from the reply it would be 3600
    expect(a.e.isLeader()).toBe(false);
    expect(a.of('lost')).toEqual([
      { epoch: 1, reason: 'renew-deadline', detail: expect.stringContaining('2000 ms') },
    ]);
  });

  it('isLeader() compares with the clock, so it is false as soon as the deadline passes even when timers run late (SIGSTOP)', async () => {
    h = new Harness();
    const pc = pausableClock(h.clock);
    const a = await h.node('a', { clock: pc });
    const b = await h.node('b');
    await h.run(1500);
    pc.pause(); // a is frozen: no timer runs, no renew
    a.store.cut();
    await h.run(4500); // 1.5 × TTL
    expect(b.e.isLeader()).toBe(true);
    expect(a.e.state()).toBe('leader'); // it has not run since the pause…
    expect(a.e.isLeader()).toBe(false); // …but it would not act
    a.store.heal();
    pc.resume();
    await h.run(20);
    expect(a.of('lost')[0]?.reason).toBe('renew-deadline');
    expect(a.e.state()).toBe('follower');
    expect(b.e.epoch()).toBeGreaterThan(1);
    h.checkEpochOrder();
  });

  it('retries a failed renew and keeps leadership when one succeeds before the deadline', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(1100); // renew sent at 1000 succeeded: deadline 3000
    a.store.cut();
    await h.run(1300); // t=2400: the renew at 2000 timed out at 2500? not yet; it hangs
    expect(a.e.isLeader()).toBe(true);
    a.store.heal();
    await h.run(400); // t=2800: the retry at 2750 succeeds
    expect(a.e.isLeader()).toBe(true);
    expect(a.of('lost')).toHaveLength(0);
    expect(a.of('renewed').at(-1)?.revision).toBe(3);
    await h.run(5000);
    expect(a.e.isLeader()).toBe(true);
  });

  it('a follower with a longer or shorter TTL waits for the longer of its own and the holder’s', async () => {
    h = new Harness();
    const a = await h.node('a', { ttlMs: 6000 });
    const b = await h.node('b'); // ttl 3000
    a.store.cut();
    await h.run(5990);
    expect(b.e.state()).toBe('follower');
    await h.run(20);
    expect(b.e.state()).toBe('leader');
  });

  it('reacquires its own record at once when a renew landed but its reply was lost', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    a.store.setLatency(0, 100);
    await h.run(1050); // renew sent at 1000 landed; reply due at 1100
    a.store.cut(); // reply lost
    await h.run(1000); // t=2050: a demoted at 2000 (its last known-good send is the grant at 0)
    expect(a.of('lost')[0]?.reason).toBe('renew-deadline');
    expect(a.e.isLeader()).toBe(false);
    a.store.heal();
    a.store.setLatency(0, 0);
    await h.run(900); // b would only take over at 4000 (first saw revision 2 at 1000)
    expect(a.e.isLeader()).toBe(true);
    expect(a.of('acquired').map((x) => x.via)).toEqual(['create', 'reacquire']);
    // Attempts made while cut off each burned an epoch (persisted before use); the grant is above them all.
    expect(a.e.epoch()).toBeGreaterThan(1);
    expect(a.e.epoch()).toBe(a.e.highestEpoch());
    expect(b.of('acquired')).toHaveLength(0);
    h.checkEpochOrder();
  });

  it('R15 on fake clocks: no overlap with a 2x fast contender and a 1.5x slow leader while the ratio < ttl/renewDeadline', async () => {
    h = new Harness();
    const slow = scaledClock(h.clock, 1 / 1.5);
    const fast = scaledClock(h.clock, 2);
    // Rate ratio 3; ttl / renewDeadline = 3000 / 800 = 3.75 > 3: safe.
    const timing = { ttlMs: 3000, renewIntervalMs: 250, renewDeadlineMs: 800 };
    const a = await h.node('a', { ...timing, clock: slow });
    const b = await h.node('b', { ...timing, clock: fast });
    await h.run(1000);
    a.store.cut();
    await h.run(3000);
    expect(b.e.isLeader()).toBe(true);
    const lostAt = a.events.find((x) => x.type === 'lost')!.t;
    const acquiredAt = b.events.find((x) => x.type === 'acquired')!.t;
    expect(lostAt).toBeLessThan(acquiredAt);
    h.checkEpochOrder();
  });

  it('R15 counter-check: with ttl/renewDeadline below the rate ratio the same faults do overlap (the bound is tight)', async () => {
    h = new Harness();
    const slow = scaledClock(h.clock, 1 / 1.5);
    const fast = scaledClock(h.clock, 2);
    const timing = { ttlMs: 3000, renewIntervalMs: 1000, renewDeadlineMs: 2000 }; // 1.5 < 3
    const a = await h.node('a', { ...timing, clock: slow });
    const b = await h.node('b', { ...timing, clock: fast });
    await h.run(100);
    a.store.cut();
    let overlap = false;
    for (let i = 0; i < 400 && !overlap; i++) {
      await h.clock.advance(10);
      overlap = a.e.isLeader() && b.e.isLeader();
    }
    expect(overlap).toBe(true);
  });
});

describe('step-down, cooldown, close', () => {
  it('stepDown deletes the lease with its revision; a follower takes over at once; the old leader cools down', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    await h.run(1200);
    await a.e.stepDown();
    expect(a.of('stepped-down')).toEqual([{ epoch: 1, released: true }]);
    expect(a.e.state()).toBe('cooldown');
    expect(a.e.isLeader()).toBe(false);
    await h.clock.advance(0);
    expect(b.e.isLeader()).toBe(true);
    expect(b.of('acquired')[0]).toMatchObject({ via: 'create', epoch: 2 });
    await h.run(1000);
    expect(a.e.state()).toBe('follower');
    h.checkEpochOrder();
  });

  it('a node in cooldown does not take a free lease; after cooldown it does', async () => {
    h = new Harness();
    const a = await h.node('a', { cooldownMs: 500 });
    await a.e.stepDown();
    await h.run(490);
    expect(a.e.state()).toBe('cooldown');
    await h.run(20);
    expect(a.e.isLeader()).toBe(true);
    expect(a.e.epoch()).toBe(2);
  });

  it('stepDown when the store is unreachable still stops acting at once; the lease then runs out by TTL', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    a.store.cut();
    const stepping = a.e.stepDown();
    await h.clock.advance(0);
    expect(a.of('stepped-down')).toEqual([]);
    expect(a.e.isLeader()).toBe(false);
    await h.run(1100); // delete timed out
    await stepping;
    expect(a.of('stepped-down')).toEqual([{ epoch: 1, released: false }]);
    await h.run(2000);
    expect(b.e.isLeader()).toBe(true);
  });

  it('stepDown({ release: false }) keeps the record: the follower takes over only after the TTL, as after a crash', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    await h.run(1200);
    const renewedAt = h.backend.writes.at(-1)!.at;
    await a.e.stepDown({ release: false, cooldownMs: 20_000 });
    expect(a.of('stepped-down')).toEqual([{ epoch: 1, released: false }]);
    expect(a.e.isLeader()).toBe(false);
    expect(h.backend.writes.at(-1)!.entry.record?.epoch).toBe(1); // nothing deleted
    await h.run(renewedAt + 2900 - h.clock.now());
    expect(b.e.isLeader()).toBe(false);
    await h.run(1000);
    expect(b.e.isLeader()).toBe(true);
    expect(b.e.epoch()).toBe(2);
    // Its own cooldown (20 s, not the election's default) keeps it out meanwhile, even when b leaves.
    await b.e.close();
    await h.run(1000);
    expect(a.e.state()).toBe('cooldown');
    await h.run(20_000);
    expect(a.e.isLeader()).toBe(true);
    h.checkEpochOrder();
  });

  it('stepDown refuses a cooldown that is not a finite number >= 0', async () => {
    h = new Harness();
    const a = await h.node('a');
    await expect(a.e.stepDown({ cooldownMs: -1 })).rejects.toThrow(/cooldownMs/);
    await expect(a.e.stepDown({ cooldownMs: Number.NaN })).rejects.toThrow(/cooldownMs/);
    expect(a.e.isLeader()).toBe(true);
  });
  it('close() of a leader steps down, is idempotent and leaves no timer behind', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(500);
    const p1 = a.e.close();
    const p2 = a.e.close();
    await Promise.all([p1, p2]);
    await a.e.closed();
    expect(a.e.state()).toBe('closed');
    expect(a.of('stepped-down')).toEqual([{ epoch: 1, released: true }]);
    expect(h.backend.current()?.record).toBeNull();
    expect(h.clock.pending()).toBe(0);
    await expect(a.e.waitForLeadership(10)).rejects.toBeInstanceOf(ClosedError);
  });

  it('supports await using', async () => {
    h = new Harness();
    const b = await h.node('b');
    {
      await using e = await createElectionOnStore(h.backend.connect('x'), {
        bucket: 'b',
        nodeId: 'x',
        clock: h.clock,
      });
      expect(e.state()).toBe('follower');
    }
    expect(b.e.isLeader()).toBe(true);
  });

  it('onEvent() sees every event as one { type, ...data } value, in the order the named listeners do', async () => {
    h = new Harness();
    const a = await h.node('a');
    const all: Array<{ type: string }> = [];
    const from = a.events.length;
    const off = a.e.onEvent((e) => all.push(e));
    await h.run(1200);
    await a.e.stepDown();
    const to = a.events.length;
    off();
    await h.run(2000);
    expect(a.events.length).toBeGreaterThan(to); // events after off() are not delivered to it
    expect(all.map((e) => e.type)).toEqual(a.events.slice(from, to).map((r) => r.type));
    expect(all.find((e) => e.type === 'stepped-down')).toEqual({
      type: 'stepped-down',
      epoch: 1,
      released: true,
    });
    expect(all.find((e) => e.type === 'renewed')).toMatchObject({ type: 'renewed', epoch: 1 });
  });
});

describe('observers, priority, waiting', () => {
  it('observeOnly never becomes leader, even on a free lease, and tracks the leader', async () => {
    h = new Harness();
    const o = await h.node('o', { observeOnly: true });
    await h.run(5000);
    expect(o.e.state()).toBe('observer');
    expect(o.e.leader().holder).toBeNull();
    const a = await h.node('a');
    await h.run(10);
    expect(o.e.leader()).toMatchObject({ holder: 'a', epoch: a.e.epoch() });
    expect(o.e.epoch()).toBe(a.e.epoch());
    expect(o.of('acquired')).toHaveLength(0);
  });

  it('setCandidate(false) keeps a node out (also after its step-down); true brings it back', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(10);
    expect(a.e.isLeader()).toBe(true);
    const b = await h.node('b');
    b.e.setCandidate(false);
    expect(b.e.state()).toBe('observer');
    expect(b.e.isCandidate()).toBe(false);
    // The leader leaves: nobody else may take it, and the leader itself does not come back while out.
    a.e.setCandidate(false);
    expect(a.e.isLeader()).toBe(true); // a leader keeps leading until it steps down
    await a.e.stepDown();
    await h.run(20_000);
    expect(a.e.state()).toBe('observer');
    expect(b.e.state()).toBe('observer');
    expect(a.of('acquired')).toHaveLength(1);
    expect(b.of('acquired')).toHaveLength(0);
    expect(b.e.leader().holder).toBeNull();
    // b comes back and takes the free lease.
    b.e.setCandidate(true);
    await h.run(100);
    expect(b.e.isLeader()).toBe(true);
    expect(a.e.isLeader()).toBe(false);
    expect(() => b.e.setCandidate(true, { priority: 11 })).toThrow(/priority must be an integer 0 … 10/);
  });

  it('an observer made a candidate (placement) takes a lease released by a leader cooling down', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(10);
    const b = await h.node('b', { observeOnly: true });
    b.e.setCandidate(true, { priority: 0 });
    expect(b.e.state()).toBe('follower');
    await a.e.stepDown({ cooldownMs: 2000 });
    await h.run(1500);
    expect(b.e.isLeader()).toBe(true);
  });

  it('setCandidate repeated with the same values does not restart the wait for a free lease', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(10);
    const b = await h.node('b', { observeOnly: true });
    b.e.setCandidate(true, { priority: 0 }); // waits 10 priority steps (500 ms) for a free lease
    await a.e.stepDown({ cooldownMs: 5000 });
    // Placement applies its view on every event, far more often than every 500 ms.
    for (let i = 0; i < 20; i++) {
      await h.run(100);
      b.e.setCandidate(true, { priority: 0 });
    }
    expect(b.e.isLeader()).toBe(true);
  });

  it('setCandidate with a lower priority lets the preferred node win a hand-over', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(10);
    const b = await h.node('b');
    const c = await h.node('c');
    // c is preferred: b waits 10 priority steps for a free lease.
    b.e.setCandidate(true, { priority: 0 });
    c.e.setCandidate(true, { priority: 10 });
    await a.e.stepDown();
    await h.run(5000);
    expect(c.e.isLeader()).toBe(true);
    expect(b.of('acquired')).toHaveLength(0);
  });

  it('watch() yields the current leader first and then each change, until stop()', async () => {
    h = new Harness();
    const a = await h.node('a');
    const o = await h.node('o', { observeOnly: true });
    const w = await o.e.watch();
    const seen: Array<string | null> = [];
    const done = (async () => {
      for await (const info of w) seen.push(info.holder);
    })();
    const b = await h.node('b');
    await a.e.stepDown();
    await h.run(10);
    expect(b.e.isLeader()).toBe(true);
    w.stop();
    await done;
    expect(seen).toEqual(['a', null, 'b']);
  });

  it('watch() resolves once live: a change made right after it resolves comes after the current leader', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(10);
    const o = await h.node('o', { observeOnly: true });
    const pending = o.e.watch();
    expect(pending).toBeInstanceOf(Promise);
    const w = await pending;
    await a.e.stepDown({ cooldownMs: 60_000 }); // the change, right after the watch is live
    await h.run(10);
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ holder: 'a' });
    expect((await it.next()).value).toMatchObject({ holder: null });
    w.stop();
    expect(await it.next()).toMatchObject({ done: true });
    // Closed: resolves (does not reject) to an ended watch that holds the last leader seen.
    await o.e.close();
    const seen: Array<string | null> = [];
    for await (const info of await o.e.watch()) seen.push(info.holder);
    expect(seen).toEqual([null]);
  });

  it('higher priority wins the race for a free lease', async () => {
    h = new Harness();
    const a = await h.node('a');
    const low = await h.node('low', { priority: 5 });
    const high = await h.node('high', { priority: 9 });
    await a.e.stepDown();
    await h.run(300);
    expect(high.e.isLeader()).toBe(true);
    expect(low.of('acquired')).toHaveLength(0);
  });

  it('waitForLeadership resolves with the epoch, or times out on the clock', async () => {
    h = new Harness();
    const a = await h.node('a');
    await expect(a.e.waitForLeadership(1)).resolves.toBe(1);
    const b = await h.node('b');
    const p = b.e.waitForLeadership(1000);
    const timeout = expect(p).rejects.toBeInstanceOf(TimeoutError);
    await h.run(1000);
    await timeout;
    const q = b.e.waitForLeadership(10_000);
    await a.e.stepDown();
    await h.run(10);
    await expect(q).resolves.toBe(2);
  });
});

describe('fencing epochs', () => {
  it('persists the highest epoch: a node restarted with its store continues above it', async () => {
    h = new Harness();
    const store = memoryEpochStore(41);
    const a = await h.node('a', { epochStore: store });
    // Its store remembers an epoch, so it saw this key hold a lease before: an empty key is a vanished lease,
    // which may hide a grant it never saw. It waits a full TTL before creating.
    await h.run(2990);
    expect(a.e.isLeader()).toBe(false);
    await h.run(20);
    expect(a.e.epoch()).toBe(42);
    expect(store.load()).toBe(42);
  });

  it('the bucket is recreated while a leader holds epoch 7: it sees the lease gone, the next epoch is 8', async () => {
    h = new Harness();
    const a = await h.node('a', { epochStore: memoryEpochStore(6) });
    await h.run(3010); // a restarted node (its store remembers epoch 6) waits a TTL on an empty key
    expect(a.e.epoch()).toBe(7);
    h.backend.recreate(); // t=3010
    // A leader reads midway between its renewals: it sees the key empty within half a renew interval.
    await h.run(500);
    expect(a.of('lost')[0]?.reason).toBe('lease-deleted');
    // A vanished lease may hide a grant nobody saw: even its last holder waits a full TTL from then.
    await h.run(2500); // t=6010: a TTL after the recreate
    expect(a.e.isLeader()).toBe(false);
    await h.run(520);
    expect(a.e.isLeader()).toBe(true);
    expect(a.e.epoch()).toBe(8);
    h.checkEpochOrder();
  });

  it('a lease that vanishes under a live leader (bucket recreated) is not taken before a full TTL', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    expect(a.e.isLeader()).toBe(true);
    await h.run(500); // b has seen a renew
    h.backend.recreate(); // no step-down marker: a may still be acting until its renew deadline
    await h.run(1000);
    expect(b.e.isLeader()).toBe(false); // a graceful release would have let b in at once
    await h.run(2600);
    expect(a.e.isLeader() && b.e.isLeader()).toBe(false);
    expect(a.e.isLeader() || b.e.isLeader()).toBe(true);
    h.checkEpochOrder();
  });

  it('a brand-new node after the bucket was recreated picks an epoch floored at the wall clock (ms)', async () => {
    h = new Harness();
    const old = await h.node('old', { epochStore: memoryEpochStore(1_000_000) });
    await old.e.close();
    h.backend.recreate();
    const fresh = await h.node('fresh', { wallClockEpochFloor: true });
    expect(fresh.e.epoch()).toBe(h.clock.wallNow());
    expect(fresh.e.epoch()).toBeGreaterThan(1_000_001);
  });

  it('a deletion carries the epoch, so a new node joining after a step-down still goes higher', async () => {
    h = new Harness();
    const a = await h.node('a', { epochStore: memoryEpochStore(99) });
    await h.run(3010);
    expect(a.e.epoch()).toBe(100);
    await a.e.close();
    const b = await h.node('b');
    expect(b.e.epoch()).toBe(101);
  });

  it('observeEpoch() with a higher epoch fences the leader at once; its next grant is higher', async () => {
    h = new Harness();
    const a = await h.node('a');
    a.e.observeEpoch(50);
    expect(a.e.isLeader()).toBe(false);
    expect(a.of('lost')[0]).toMatchObject({ epoch: 1, reason: 'fenced' });
    await h.run(3100);
    expect(a.e.isLeader()).toBe(true);
    expect(a.e.epoch()).toBe(51);
  });

  it('a lease overwritten under the leader’s feet demotes it at its next poll or renew', async () => {
    h = new Harness();
    const a = await h.node('a');
    const cur = h.backend.current()!;
    h.backend.apply(
      { record: { ...cur.record!, holder: 'intruder', instance: 'x', epoch: 5 } },
      cur.revision,
    );
    await h.clock.advance(0);
    expect(a.e.state()).toBe('leader'); // a leader does not watch its own key (renews would echo back)
    await h.clock.advance(250); // its poll
    expect(a.e.isLeader()).toBe(false);
    expect(a.of('lost')[0]?.reason).toMatch(/lease-taken|fenced/);
  });
});

describe('deletions nobody announced (issue 18: server markers, purges)', () => {
  it('a server marker that removes a takeover before anyone saw it never lets a second node in', async () => {
    // nats-server's per-key TTL expiry can land a delete marker right after a CAS takeover of the expired
    // revision; watchers see only the marker. The old rule (create once the last live revision seen has
    // been silent for a TTL) let a second node in while the taker still led.
    h = new Harness();
    const a = await h.node('a');
    const others = await Promise.all(['b', 'c', 'd'].map((id) => h.node(id)));
    await h.run(500);
    a.store.cut(); // last renew at 0; frozen from here on
    h.backend.markerAfterNextUpdate();
    await h.run(2600); // t=3100: the takeover at 3000 was followed by the marker
    const taken = h.backend.writes.find((w) => w.entry.record && w.entry.record.holder !== 'a');
    expect(taken).toBeDefined();
    expect(h.backend.current()?.record).toBeNull();
    expect(h.leaders()).toHaveLength(0); // the taker saw the marker before its reply: its grant is not current
    expect(others.flatMap((n) => n.of('acquired'))).toEqual([]);
    await h.run(2800); // t=5900: less than a TTL after the marker: still nobody
    expect(h.leaders()).toHaveLength(0);
    await h.run(300); // t=6200: a full TTL after the marker
    expect(h.leaders()).toHaveLength(1);
    h.checkEpochOrder();
  });

  it('a marker that lands after the takeover was acknowledged: the taker stops at its next read, others wait a TTL', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    const c = await h.node('c', { priority: 5 });
    await h.run(500);
    a.store.cut();
    await h.run(2550); // t=3050: b took over at 3000 (c has a lower priority but the same TTL rule)
    const taker = [b, c].find((n) => n.e.isLeader())!;
    expect(taker).toBeDefined();
    h.backend.deleteUnannounced(); // a deletion nobody in the election wrote, right after the grant
    await h.run(500); // the taker's read (midway between renewals) sees it
    expect(taker.of('lost')[0]?.reason).toBe('lease-deleted');
    await h.run(2400); // t=5950: a TTL from the deletion (3050) is not over
    expect(h.leaders()).toHaveLength(0);
    await h.run(200);
    expect(h.leaders()).toHaveLength(1);
    h.checkEpochOrder();
  });

  it('a deletion right after the last live revision (nothing in between) frees the lease a TTL after that revision', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    await h.run(1050); // b saw a's renew at 1000
    a.store.cut();
    h.backend.deleteUnannounced(); // revision 3 directly after 2: an expiry of 2, nothing hidden
    await h.run(2900); // t=3950
    expect(b.e.isLeader()).toBe(false);
    await h.run(100); // t=4050: a TTL after b first saw revision 2 (at 1000), not after the deletion (1050)
    expect(b.e.isLeader()).toBe(true);
    expect(b.of('acquired')[0]?.via).toBe('create');
  });

  it('a deletion with a release record (step-down) is free at once; one without waits a TTL', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    await h.run(100);
    await a.e.stepDown();
    await h.clock.advance(0);
    expect(b.e.isLeader()).toBe(true);
    const c = await h.node('c');
    await h.run(100);
    b.store.cut();
    h.backend.apply({ record: null }, h.backend.current()!.revision + 0); // a KV delete without a record
    await h.run(2000);
    expect(c.e.isLeader()).toBe(false);
    await h.run(1100);
    expect(c.e.isLeader()).toBe(true);
  });
});

describe('announcing grants', () => {
  it('acquired is never emitted for a grant overtaken before its reply (a higher epoch seen on the watch)', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    await h.run(100);
    a.store.cut();
    b.store.setLatency(0, 50); // b's takeover at 3000 is stored at once, its reply comes at 3050
    await h.run(2910); // t=3010: b's write is stored, the reply not yet back
    const mine = h.backend.current()!;
    expect(mine.record?.holder).toBe('b');
    h.backend.apply({ record: { ...mine.record!, holder: 'x', instance: 'x', epoch: 99 } }, mine.revision);
    const waiting = b.e.waitForLeadership(200);
    const timedOut = expect(waiting).rejects.toBeInstanceOf(TimeoutError);
    await h.run(250);
    await timedOut;
    expect(b.of('acquired')).toEqual([]);
    expect(b.e.isLeader()).toBe(false);
    expect(b.e.state()).toBe('follower');
  });

  it('acquired carries the send time of the grant and the deadline it gives', async () => {
    h = new Harness();
    const a = await h.node('a');
    const b = await h.node('b');
    await h.run(100);
    a.store.cut();
    b.store.setLatency(20, 30);
    await h.run(3200);
    const acq = b.of('acquired')[0]!;
    expect(acq.via).toBe('takeover');
    expect(acq.sentAt).toBe(3000); // b first saw revision 1 at 0: takeover sent at 3000, stored at 3020
    expect(acq.deadline).toBe(3000 + 2000);
    expect(acq.sentAtWallMs).toBe(h.clock.wallNow() - (h.clock.now() - 3000));
  });

  it('a state listener that fences the new leader suppresses its acquired event', async () => {
    h = new Harness();
    const a = await h.node('a');
    await h.run(100);
    await a.e.stepDown();
    const b = await h.node('b', {}); // acquires on its first tick
    expect(b.e.isLeader()).toBe(true);
    const c = await h.node('c');
    c.e.on('state', ({ to }) => to === 'leader' && c.e.observeEpoch(c.e.epoch() + 100));
    await b.e.stepDown();
    await h.run(10);
    expect(c.of('acquired')).toEqual([]);
    expect(c.of('lost')[0]?.reason).toBe('fenced');
  });
});

describe('observers', () => {
  it('report a holder gone once its revision stayed for a full TTL (the server never expires a lease)', async () => {
    h = new Harness();
    const a = await h.node('a');
    const o = await h.node('o', { observeOnly: true });
    await h.run(1050);
    a.store.cut();
    await h.run(2900); // t=3950: o first saw revision 2 at 1000
    expect(o.e.leader().holder).toBe('a');
    await h.run(100);
    expect(o.e.leader()).toEqual({ holder: null, epoch: a.e.epoch(), revision: 2 });
  });
});

describe('fast failover', () => {
  it('takes over after N "no responders" probes, well before the TTL, when the leader’s connection is gone', async () => {
    h = new Harness();
    const ff = { fastFailover: true, fastFailoverIntervalMs: 100, fastFailoverProbes: 2 };
    const a = await h.node('a', ff);
    const b = await h.node('b', ff);
    await h.run(2050); // b started at 0: its probes count from renewDeadlineMs (2000) after that
    expect(h.backend.current()?.record?.live).toBe(true);
    a.store.cut(); // connection gone: its subscription disappears (last renew sent at 2000)
    await h.clock.advance(300);
    expect(b.e.state()).toBe('leader');
    expect(b.of('acquired')[0]).toMatchObject({ via: 'fast-failover', epoch: 2 });
    // The documented trade-off: the old leader, cut off but alive, still believes it leads until its
    // renew deadline (last good renew sent at 2000 … here at 2000 + 2000); fencing (epoch 2 > 1) refuses its writes.
    expect(a.e.isLeader()).toBe(true);
    expect(a.e.epoch()).toBeLessThan(b.e.epoch());
    await h.clock.advance(1650); // t=4000
    expect(a.e.isLeader()).toBe(false);
  });

  it('a probe that waits for its timeout (the holder dying just then) is followed by the next at once', async () => {
    h = new Harness();
    const ff = { fastFailover: true, fastFailoverIntervalMs: 100, fastFailoverProbes: 2 };
    const a = await h.node('a', ff);
    const b = await h.node('b', ff);
    await h.run(2050);
    // A killed process keeps its connection until the kernel has torn it down: a probe sent in that window
    // reaches the dying holder's subscription and gets no answer. Here b's next probe is that probe.
    const probe = b.store.probe.bind(b.store);
    let dying = true;
    b.store.probe = () => {
      if (!dying) return probe();
      dying = false;
      // Answered by nobody: the probe's timeout (the interval, 100 ms) passes first.
      return new Promise<ProbeResult>((resolve) =>
        h.clock.setTimeout(() => resolve({ kind: 'unknown' }), 100),
      );
    };
    a.store.cut();
    // Its next probe goes out by 2150 and times out 100 ms later; then two "no responders" 100 ms apart. With
    // the next probe an interval after the timeout instead, the takeover came 100 ms later (by 2450).
    await h.clock.advance(320);
    expect(dying).toBe(false);
    expect(b.e.state()).toBe('leader');
    expect(b.of('acquired')[0]).toMatchObject({ via: 'fast-failover' });
  });

  it('after its own reconnect (a server restart), a contender ignores "no responders" for renewDeadlineMs', async () => {
    h = new Harness();
    const ff = { fastFailover: true, fastFailoverIntervalMs: 100, fastFailoverProbes: 2 };
    const a = await h.node('a', ff);
    const b = await h.node('b', ff);
    await h.run(3050); // a renewed at 3000
    // The server restarts: both lose their link; b reconnects first, a 1500 ms later (slow reconnect).
    a.store.cut();
    b.store.cut();
    await h.run(100);
    b.store.heal(); // t=3150: b is back; a's subscription is not (it is still reconnecting)
    await h.run(1500);
    expect(b.of('acquired')).toEqual([]); // the old rule took over here, while a still led
    a.store.heal(); // t=4650: a is back, answers probes and renews before its deadline (5000)
    await h.run(3000);
    expect(a.e.isLeader()).toBe(true);
    expect(a.of('lost')).toEqual([]);
    expect(b.of('acquired')).toEqual([]);
  });

  it('a holder that never comes back after a restart is still replaced early, renewDeadlineMs after the reconnect', async () => {
    h = new Harness();
    const ff = { fastFailover: true, fastFailoverIntervalMs: 100, fastFailoverProbes: 2 };
    const a = await h.node('a', ff);
    // A long TTL so that the TTL rule does not decide first; the usual 2000 ms renew deadline.
    const b = await h.node('b', { ...ff, ttlMs: 6000, renewIntervalMs: 1000, renewDeadlineMs: 2000 });
    await h.run(3050);
    a.store.cut();
    b.store.cut();
    await h.run(100);
    b.store.heal(); // t=3150
    await h.run(1990);
    expect(b.e.isLeader()).toBe(false);
    await h.run(300); // from 5150 on its probes count: two "no responders" later it takes over
    expect(b.e.isLeader()).toBe(true);
    expect(b.of('acquired')[0]?.via).toBe('fast-failover');
  });

  it('never takes over while the leader answers probes', async () => {
    h = new Harness();
    const a = await h.node('a', { fastFailover: true });
    const b = await h.node('b', { fastFailover: true });
    await h.run(10_000, 50);
    expect(a.e.isLeader()).toBe(true);
    expect(b.of('acquired')).toHaveLength(0);
  });

  it('does not probe a holder that did not announce liveness: it waits the TTL', async () => {
    h = new Harness();
    const c = await h.node('c'); // no fast failover
    const d = await h.node('d', { fastFailover: true });
    await h.run(100);
    c.store.cut();
    await h.run(1000);
    expect(d.e.state()).toBe('follower');
    await h.run(2000);
    expect(d.e.state()).toBe('leader');
    expect(d.of('acquired')[0]?.via).toBe('takeover');
  });
});

describe('metrics and events', () => {
  it('reports epoch, state and transition durations on the given registry', async () => {
    h = new Harness();
    const registry = new Registry();
    const a = await h.node('a', { registry });
    await h.node('b', { registry });
    await h.run(1000);
    await a.e.stepDown();
    const text = await registry.metrics();
    expect(text).toMatch(/gc_election_epoch\{bucket="b",key="leader",node="a"\} 1/);
    expect(text).toMatch(/gc_election_state\{bucket="b",key="leader",node="a",state="cooldown"\} 1/);
    expect(text).toMatch(/gc_election_state\{bucket="b",key="leader",node="b",state="leader"\} 1/);
    expect(text).toMatch(
      /gc_election_transition_seconds_count\{bucket="b",key="leader",node="a",transition="renew"\} 1/,
    );
    expect(text).toMatch(/gc_election_transition_seconds_count\{[^}]*node="a",transition="step_down"\} 1/);
  });

  it('emits state changes in order for a full life cycle', async () => {
    h = new Harness();
    const a = await h.node('a', { cooldownMs: 100 });
    await a.e.stepDown();
    await h.run(200);
    await a.e.close();
    const states = a.of('state').map((s) => `${s.from}>${s.to}`);
    expect(states).toEqual([
      'follower>leader',
      'leader>cooldown',
      'cooldown>follower',
      'follower>leader',
      'leader>cooldown',
      'cooldown>closed',
    ]);
  });

  it('a listener that throws does not break the election; on() returns an unsubscribe', async () => {
    h = new Harness();
    const a = await h.node('a');
    const off = a.e.on('renewed', () => {
      throw new Error('listener bug');
    });
    let n = 0;
    const off2 = a.e.on('renewed', () => n++);
    await h.run(2000);
    off();
    off2();
    await h.run(2000);
    expect(n).toBe(2);
    expect(a.e.isLeader()).toBe(true);
  });
});
