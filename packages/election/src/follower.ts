// What a follower does: observe the lease key (watch and reads), decide when it is free or expired, probe a
// live holder (fast failover) and acquire the lease with a new epoch. Extended by the leader logic (leader.ts).
import { withTimeout, type Epoch } from '@gc/core';
import { ElectionCore, type Lease } from './core.js';
import { LeaseConflictError } from './errors.js';
import { MAX_PRIORITY } from './options.js';
import type { LeaseEntry, LeaseStore } from './store.js';
import {
  ElectionState,
  LostReason,
  type AcquireVia,
  type ElectionOptions,
  type LeaderInfo,
  type LeaseRecord,
} from './types.js';

/** Observing the lease key and acquiring it; the leader's side is in leader.ts. */
export abstract class FollowerElection extends ElectionCore {
  /** The last live grant observed (any holder): its revision, when first seen, and the TTL to wait on it. */
  #lastLive: { revision: number; since: number; ttl: number } | undefined;
  /**
   * True once any entry of the key was observed — by this process, or by an earlier one of this node (its epoch
   * store remembers an epoch): from then on an empty key is a vanished lease.
   */
  #sawEntry: boolean;
  /** Clock time of the last entry observed (watch or poll): how fresh `obs` is. */
  #heardAt = 0;
  /** Highest epoch seen in a record (or release) of another holder. */
  #highestOther = 0;
  #acquiring = false;
  /**
   * Highest revision observed while this node's grant write was in flight. Not the last one observed: a poll
   * reply read before the grant landed can arrive after the watch delivered a later revision.
   */
  #seenWhileAcquiring = 0;

  constructor(store: LeaseStore, o: ElectionOptions) {
    super(store, o);
    this.#sawEntry = this.highest > 0;
  }

  protected override observe(e: LeaseEntry): void {
    if (this.state() === ElectionState.Closed) return;
    if (this.#acquiring) this.#seenWhileAcquiring = Math.max(this.#seenWhileAcquiring, e.revision);
    const now = this.clock.now();
    // Out of touch for longer than a poll (cut off, paused): the revisions seen next may belong to a recreated
    // bucket and only look like successors of the last live grant seen before. And an empty key equal to the
    // one seen before the gap proves nothing about the gap: grants may have come and gone (the bucket recreated
    // again) unseen, so it counts as a new observation — a free lease is free a full TTL from now.
    const outOfTouch = now - this.#heardAt > this.o.pollIntervalMs + this.o.opTimeoutMs;
    if (outOfTouch) this.#lastLive = undefined;
    this.#heardAt = now;
    if (e.record) this.seeEpoch(e.record.epoch);
    if (e.releasedEpoch) this.seeEpoch(e.releasedEpoch);
    const other = e.record
      ? e.record.instance === this.instance
        ? 0
        : e.record.epoch
      : (e.releasedEpoch ?? 0);
    this.#highestOther = Math.max(this.#highestOther, other);
    const lease = this.lease;
    if (this.state() === ElectionState.Leader && lease) {
      // Older than our own last write: a stale read (a poll reply overtaken by the watch).
      if (e.revision !== 0 && e.revision < lease.revision) return;
      if (e.revision === lease.revision) return void this.note(e);
      if (e.record && e.record.instance === this.instance && e.record.epoch === lease.epoch) {
        return void this.note(e); // our own renew, seen before its reply
      }
      this.note(e);
      if (e.record) return this.lose(LostReason.LeaseTaken, `now held by ${e.record.holder}`);
      return this.lose(LostReason.LeaseDeleted, `revision ${e.revision}`);
    }
    // Contend on a change, and also whenever nothing is scheduled: an acquire that lost a race (or timed out)
    // may leave an observation that did not change but still needs acting on (a free lease).
    if (this.note(e, outOfTouch) || !this.timers.has('action')) this.contend();
  }

  /**
   * Records an observation; returns true when the entry changed: another revision, or the same revision with
   * other content (revision numbers are reused when the bucket is recreated) — or `afterGap` with an empty
   * key: the first read after being out of touch proves nothing about the gap even when it looks like the
   * last one (grants may have come and gone, the bucket recreated again), so its wait starts afresh. (A live
   * record equal to the last one seen is the same grant: epochs are unique.)
   */
  protected note(e: LeaseEntry, afterGap = false): boolean {
    const o = this.obs;
    const changed =
      (afterGap && !e.record) ||
      e.revision !== o.revision ||
      (e.record && o.record
        ? e.record.epoch !== o.record.epoch || e.record.instance !== o.record.instance
        : e.record !== o.record || (e.releasedEpoch !== undefined) !== o.released);
    if (!changed) return false;
    const now = this.clock.now();
    this.obs = {
      revision: e.revision,
      record: e.record,
      since: now,
      released: e.releasedEpoch !== undefined,
    };
    this.noResponders = 0;
    if (e.revision > 0) this.#sawEntry = true;
    // Revisions went back (a recreated bucket, or a stale read): later ones are no successors of the last live one.
    if (this.#lastLive && e.revision <= this.#lastLive.revision) this.#lastLive = undefined;
    this.clearTimer('expire');
    if (e.record) {
      const ttl = Math.max(e.record.ttlMs, this.o.ttlMs);
      this.#lastLive = { revision: e.revision, since: now, ttl };
      if (e.record.instance !== this.instance) {
        // The server never expires a lease: report a holder gone once its revision stayed for a full TTL.
        this.timer('expire', ttl, () => this.#expireLeaderInfo(e.revision));
      }
    }
    this.#setLeaderInfo(
      e.record
        ? { holder: e.record.holder, epoch: e.record.epoch, revision: e.revision }
        : { holder: null, epoch: this.leaderInfo.epoch, revision: e.revision },
    );
    return true;
  }

  #setLeaderInfo(info: LeaderInfo): void {
    const changed = info.holder !== this.leaderInfo.holder || info.epoch !== this.leaderInfo.epoch;
    this.leaderInfo = info;
    if (!changed) return;
    this.emit('leader', { ...info });
    for (const w of this.watches) w.push({ ...info });
  }

  #expireLeaderInfo(revision: number): void {
    if (this.obs.revision !== revision || !this.obs.record || this.state() === ElectionState.Leader) return;
    this.#setLeaderInfo({ holder: null, epoch: this.leaderInfo.epoch, revision });
  }

  /** Follower logic for the current observation: schedule an acquire, a takeover, or probes. */
  protected contend(): void {
    if (this.state() === ElectionState.Follower && !this.candidate) {
      // Not a candidate any more (placement): observe only, from wherever it was a follower again.
      this.clearTimer('action');
      this.clearTimer('probe');
      this.setState(ElectionState.Observer);
      return;
    }
    if (this.state() !== ElectionState.Follower || this.#acquiring || !this.started) return;
    this.clearTimer('action');
    this.clearTimer('probe');
    const { revision, record, since, released } = this.obs;
    if (revision < 0) return;
    if (!record) {
      const delay = Math.max(
        this.#freeAfter(revision, since, released),
        (MAX_PRIORITY - this.o.priority) * this.o.priorityStepMs,
      );
      if (delay === 0) return void this.#tryAcquire(revision, 'create');
      this.timer('action', delay, () => void this.#tryAcquire(revision, 'create'));
      return;
    }
    if (record.instance === this.instance && record.epoch >= this.#highestOther) {
      // Our own grant outlived our leadership (a renew landed after the deadline, or its reply was lost):
      // nobody else holds it, so take it again with a new epoch. Not if another holder had a higher epoch
      // since: then our record is back by a late write on a reused revision (a recreated bucket).
      return void this.#tryAcquire(revision, 'reacquire');
    }
    // The holder is another node: it is expired only when this revision stayed for a full TTL on our clock.
    const ttl = Math.max(record.ttlMs, this.o.ttlMs);
    const wait = since + ttl - this.clock.now();
    this.timer('action', Math.max(0, wait), () => void this.#tryAcquire(revision, 'takeover'));
    if (this.o.fastFailover && record.live) {
      this.timer('probe', this.o.fastFailoverIntervalMs, () => void this.#probe(revision));
    }
  }

  /**
   * How long to wait before creating on a free lease (a deletion at `revision`, first seen at `since`; or
   * revision 0: no entry at all). A deletion its holder announced (step-down) is free at once, and so is an
   * empty key that this node never saw an entry of (a new bucket). Any other deletion — a server delete
   * marker, a purge, a bucket recreated — may hide a grant this node never saw: it came after that grant,
   * whose holder stops acting within its renew deadline of sending it, so waiting a full TTL from first
   * seeing the deletion is safe. When the deletion directly follows (revision + 1) the last live grant seen,
   * nothing can be hidden between them, and the usual rule applies: a full TTL since that grant was seen.
   */
  #freeAfter(revision: number, since: number, released: boolean): number {
    if (released || (revision === 0 && !this.#sawEntry)) return 0;
    const live = this.#lastLive;
    const now = this.clock.now();
    if (live && revision === live.revision + 1) return Math.max(0, live.since + live.ttl - now);
    return Math.max(0, since + Math.max(this.o.ttlMs, live?.ttl ?? 0) - now);
  }

  async #probe(revision: number): Promise<void> {
    if (this.state() !== ElectionState.Follower || this.obs.revision !== revision) return;
    const sentAt = this.clock.now();
    const r = await this.store.probe(this.o.fastFailoverIntervalMs);
    if (this.state() !== ElectionState.Follower || this.obs.revision !== revision) return;
    if (r.kind === 'absent' && this.clock.now() < this.connectedAt + this.o.renewDeadlineMs) {
      // This node (re)connected recently, maybe after a server restart: a live holder may still be
      // reconnecting and not yet subscribed. It cannot renew without reconnecting, so by renewDeadlineMs
      // after our own reconnect it has either answered or stopped acting.
      this.noResponders = 0;
    } else {
      this.noResponders = r.kind === 'absent' ? this.noResponders + 1 : 0;
    }
    if (this.noResponders >= this.o.fastFailoverProbes) {
      this.log.info('leader does not answer liveness probes: fast takeover', { revision });
      return void this.#tryAcquire(revision, 'fast-failover');
    }
    // Probes start every interval: one that waited for its timeout (a holder dying right then — its connection
    // is gone only once the kernel has torn the process down — or frozen) is followed by the next at once,
    // not an interval after its timeout.
    const next = Math.max(0, sentAt + this.o.fastFailoverIntervalMs - this.clock.now());
    this.timer('probe', next, () => void this.#probe(revision));
  }

  /** A new epoch: above every epoch seen, and (by default) at least the wall clock in ms. */
  #nextEpoch(): Epoch {
    const floor = this.o.wallClockEpochFloor ? Math.floor(this.clock.wallNow()) : 0;
    return Math.max(this.highest + 1, floor);
  }

  async #tryAcquire(expected: number, via: AcquireVia): Promise<void> {
    if (this.state() !== ElectionState.Follower || this.#acquiring || this.obs.revision !== expected) return;
    if (this.clock.now() - this.#heardAt > this.o.pollIntervalMs + this.o.opTimeoutMs) {
      // Nothing heard from the store for longer than a poll (cut off, paused): it may have moved on, even to
      // the same revision number in a recreated bucket. Look again before writing on the old observation.
      return void this.#pollNow();
    }
    this.#acquiring = true;
    this.clearTimer('action');
    this.clearTimer('probe');
    const epoch = this.#nextEpoch();
    // Persist before use: a crash after the write must never let this node reuse the epoch.
    this.seeEpoch(epoch);
    const record: LeaseRecord = {
      holder: this.nodeId,
      instance: this.instance,
      epoch,
      ttlMs: this.o.ttlMs,
      live: this.o.fastFailover,
      priority: this.o.priority,
      grantedAt: Math.floor(this.clock.wallNow()),
    };
    // Fast failover: answer probes before the record that announces it exists, or a contender could see
    // "no responders" for a live leader.
    let stopLiveness: (() => void) | undefined;
    if (this.o.fastFailover) stopLiveness = this.store.serveLiveness(() => epoch);
    const sentAt = this.clock.now();
    const sentAtWallMs = this.clock.wallNow();
    this.#seenWhileAcquiring = 0;
    let revision: number;
    try {
      revision = await withTimeout(
        this.store.put(record, Math.max(0, expected), this.o.opTimeoutMs),
        this.o.opTimeoutMs,
        'lease acquire',
        this.clock,
      );
    } catch (err) {
      stopLiveness?.();
      this.#acquiring = false;
      if (this.state() !== ElectionState.Follower) return;
      if (err instanceof LeaseConflictError) {
        void this.#pollNow();
      } else {
        this.emit('error', { op: expected > 0 ? 'update' : 'create', error: err as Error });
        this.timer('action', this.o.pollIntervalMs, () => this.contend());
      }
      return;
    }
    this.#acquiring = false;
    // The watch stays on while the write is in flight: a later revision (a deletion, another grant) or a
    // higher epoch seen before the reply means this grant is already gone. It is never announced.
    const overtaken = this.#seenWhileAcquiring > revision || this.highest > epoch;
    if (
      this.state() !== ElectionState.Follower ||
      overtaken ||
      this.clock.now() >= sentAt + this.o.renewDeadlineMs
    ) {
      // Closed or stepped aside meanwhile, overtaken, or the reply came too late to act on: leave the
      // record; the own-record rule (or the TTL) deals with it.
      stopLiveness?.();
      if (overtaken) {
        this.log.info('grant overtaken before its reply: not leading', { epoch, revision, via });
      } else {
        this.note({ revision, record });
      }
      if (this.state() === ElectionState.Follower) this.contend();
      return;
    }
    this.note({ revision, record });
    this.stopLiveness = stopLiveness;
    const lease: Lease = { epoch, revision, record, lastGoodSentAt: sentAt, renewing: false };
    this.lease = lease;
    this.setState(ElectionState.Leader);
    // A `state` listener may have fenced this grant (observeEpoch): then it is over and never announced.
    if (this.lease !== lease) return;
    this.watchLease(false);
    this.metrics.epoch(epoch);
    const tookMs = this.clock.now() - this.contendingSince;
    this.metrics.transition('acquire', tookMs / 1000);
    this.scheduleLeaderTimers();
    if (!this.isLeader()) return;
    this.log.info('leadership acquired', { epoch, revision, via });
    const deadline = sentAt + this.o.renewDeadlineMs;
    this.emit('acquired', { epoch, revision, via, tookMs, sentAt, sentAtWallMs, deadline });
  }

  async #pollNow(): Promise<void> {
    this.clearTimer('poll');
    await this.poll();
  }

  /** Starts the renew and deadline timers of the lease just acquired (leader.ts). */
  protected abstract scheduleLeaderTimers(): void;
}
