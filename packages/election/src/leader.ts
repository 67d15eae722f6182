// What a leader does: renew its lease before the renew deadline, demote itself when the deadline passes or
// the lease changed, and end its leadership (lost, fenced, stepped down).
import { randomBytes } from 'node:crypto';
import { withTimeout } from '@gc/core';
import type { Lease } from './core.js';
import { LeaseConflictError } from './errors.js';
import { FollowerElection } from './follower.js';
import type { LeaseEntry } from './store.js';
import { ElectionState, LostReason, type LostReasonValue } from './types.js';

/** Holding the lease: renewals, the renew deadline, and losing it. */
export abstract class LeaderElection extends FollowerElection {
  protected override scheduleLeaderTimers(): void {
    const l = this.lease!;
    const now = this.clock.now();
    this.timer('deadline', l.lastGoodSentAt + this.o.renewDeadlineMs - now, () => this.#checkDeadline());
    this.timer(
      'renew',
      Math.max(0, l.lastGoodSentAt + this.o.renewIntervalMs - now),
      () => void this.#renew(),
    );
  }

  #checkDeadline(): void {
    const l = this.lease;
    if (this.state() !== ElectionState.Leader || !l) return;
    const left = l.lastGoodSentAt + this.o.renewDeadlineMs - this.clock.now();
    if (left <= 0) {
      return this.lose(
        LostReason.RenewDeadline,
        `no successful renew within ${this.o.renewDeadlineMs} ms of sending the last one`,
      );
    }
    this.timer('deadline', left, () => this.#checkDeadline());
  }

  async #renew(): Promise<void> {
    const l = this.lease;
    if (this.state() !== ElectionState.Leader || !l || l.renewing) return;
    // Past the deadline (a process resumed after SIGSTOP runs its renew timer before its deadline timer): a
    // renew can no longer keep leadership, and its expected revision may mean another write by now (a
    // recreated bucket reuses revisions). Demote instead of writing.
    if (this.clock.now() >= l.lastGoodSentAt + this.o.renewDeadlineMs) return this.#checkDeadline();
    l.renewing = true;
    const sentAt = this.clock.now();
    const timeoutMs = Math.max(
      1,
      Math.min(this.o.opTimeoutMs, l.lastGoodSentAt + this.o.renewDeadlineMs - sentAt),
    );
    try {
      const revision = await withTimeout(
        this.store.put(l.record, l.revision, timeoutMs),
        timeoutMs,
        'lease renew',
        this.clock,
      );
      l.renewing = false;
      if (this.lease !== l || this.state() !== ElectionState.Leader) return;
      l.revision = revision;
      l.lastGoodSentAt = Math.max(l.lastGoodSentAt, sentAt);
      this.note({ revision, record: l.record });
      const latencyMs = this.clock.now() - sentAt;
      this.metrics.transition('renew', latencyMs / 1000);
      this.scheduleLeaderTimers();
      const deadline = l.lastGoodSentAt + this.o.renewDeadlineMs;
      this.emit('renewed', { epoch: l.epoch, revision, latencyMs, sentAt, deadline });
    } catch (err) {
      l.renewing = false;
      if (this.lease !== l || this.state() !== ElectionState.Leader) return;
      if (err instanceof LeaseConflictError) return this.#onRenewConflict(l);
      this.emit('error', { op: 'renew', error: err as Error });
      // Retry soon; the deadline timer demotes if nothing succeeds in time.
      this.timer('renew', Math.max(1, Math.round(this.o.renewIntervalMs / 4)), () => void this.#renew());
    }
  }

  async #onRenewConflict(l: Lease): Promise<void> {
    // A renew whose reply timed out may have landed: if the entry is still our grant, adopt its revision
    // (keeping the deadline of the last renew we know succeeded) and renew again.
    let e: LeaseEntry | null = null;
    try {
      e = await withTimeout(this.store.get(this.o.opTimeoutMs), this.o.opTimeoutMs, 'lease read', this.clock);
    } catch (err) {
      this.emit('error', { op: 'get', error: err as Error });
    }
    if (this.lease !== l || this.state() !== ElectionState.Leader) return;
    if (e?.record && e.record.instance === this.instance && e.record.epoch === l.epoch) {
      l.revision = e.revision;
      this.note(e);
      return void this.#renew();
    }
    if (e) this.note(e);
    this.lose(LostReason.LeaseTaken, e?.record ? `now held by ${e.record.holder}` : 'lease changed');
  }

  protected endLeadership(): void {
    this.watchLease(true);
    // Back to a follower's reads (a leader's next one may be half a renew interval away).
    if (this.timers.has('poll')) this.timer('poll', this.o.pollIntervalMs, () => void this.poll());
    this.clearTimer('renew');
    this.clearTimer('deadline');
    this.stopLiveness?.();
    this.stopLiveness = undefined;
    this.lease = undefined;
  }

  protected override lose(reason: LostReasonValue, detail: string): void {
    const l = this.lease;
    if (this.state() !== ElectionState.Leader || !l) return;
    this.endLeadership();
    this.setState(ElectionState.Follower);
    this.contendingSince = this.clock.now();
    this.metrics.transition('lost', (this.clock.now() - l.lastGoodSentAt) / 1000);
    this.log.warn('leadership lost', { epoch: l.epoch, reason, detail });
    this.emit('lost', { epoch: l.epoch, reason, detail });
    // Forget the revision so that the current entry is looked at afresh (own record → reacquire, another
    // holder → a full TTL from now).
    this.obs = { ...this.obs, since: this.clock.now() };
    // A fenced grant is not ours to take back: with a new instance id its record looks foreign (TTL wait).
    if (reason === LostReason.Fenced) this.instance = randomBytes(6).toString('base64url');
    this.contend();
  }
}
