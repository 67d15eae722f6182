// The ring's coordinator: the member elected with @gc/election expires members whose lease stopped
// changing, decides the partition map (fenced by its epoch) and tracks the moves it started.
import { fencedKv, FencedError, WriteConflictError, type FencedKv, type TimerHandle } from '@gc/core';
import type { Election } from '@gc/election';
import { planMoves } from './assign.js';
import { isConflict } from './bucket.js';
import type { MemberContext } from './context.js';
import { encodeJson, type MapRecord } from './records.js';
import { S_OWNED, S_OWNING } from './tables.js';
import type { RebalanceReasonValue } from './types.js';

/** Delay of a coordinator decision triggered by partition record changes (ms). */
export const RECORD_DECISION_DELAY_MS = 20;

/** What the coordinator uses of its ring member. */
export interface CoordinatorContext extends MemberContext {
  readonly bucket: string;
  election(): Election | undefined;
}

/** The coordinator role of one ring member: active between `become` and `stop`. */
export class Coordinator {
  readonly #ctx: CoordinatorContext;
  #coordinating = false;
  #fenced: FencedKv | undefined;
  #timer: TimerHandle | undefined;
  #tick: TimerHandle | undefined;
  #running = false;
  #again = false;
  /** Monotonic time of the last change of the members' shape (join, leave, weight, state). */
  membershipChangedAt = -Infinity;
  #moveSince = new Map<number, { at: number; from: string | undefined; to: string; stuck: boolean }>();
  #lastReason: RebalanceReasonValue | undefined;
  #expiring = new Set<string>();
  #needDecide = true;
  #lastDeferred = 0;

  constructor(ctx: CoordinatorContext) {
    this.#ctx = ctx;
  }

  /** True while this member coordinates. */
  get coordinating(): boolean {
    return this.#coordinating;
  }

  /** Stops the coordinator's timers (the ring closes). */
  clearTimers(): void {
    for (const t of [this.#timer, this.#tick]) if (t) this.#ctx.o.clock.clearTimeout(t);
    this.#timer = this.#tick = undefined;
  }

  become(epoch: number): void {
    if (this.#ctx.closed()) return;
    this.#coordinating = true;
    this.#fenced = fencedKv(this.#ctx.kv, {
      epoch: () => {
        const e = this.#ctx.election();
        return e?.isLeader() ? e.epoch() : undefined;
      },
      onFenced: (err) => this.#ctx.election()?.observeEpoch(err.highest),
      name: this.#ctx.bucket,
    });
    this.#ctx.emit({ type: 'coordinator', epoch });
    this.#ctx.o.logger.info('ring: coordinating', { epoch });
    this.schedule();
    const tick = () => {
      this.#tick = this.#ctx.o.clock.setTimeout(
        () => {
          if (!this.#coordinating) return;
          this.schedule();
          tick();
        },
        Math.max(25, Math.min(250, Math.round(this.#ctx.o.ttlMs / 8))),
      );
    };
    tick();
  }

  stop(epoch: number): void {
    if (!this.#coordinating) return;
    this.#coordinating = false;
    if (this.#tick) this.#ctx.o.clock.clearTimeout(this.#tick);
    if (this.#timer) this.#ctx.o.clock.clearTimeout(this.#timer);
    this.#tick = this.#timer = undefined;
    this.#moveSince.clear();
    this.#ctx.metrics.nodeCounts(new Map());
    this.#ctx.emit({ type: 'coordinator-lost', epoch });
  }

  /**
   * Schedules a coordinator pass. `decide` false (a partition record changed): the pass only tracks moves,
   * unless moves were left for later (budget, stability) — record changes alone never change the plan.
   */
  schedule(delay = 0, decide = true): void {
    if (!this.#coordinating || this.#ctx.closed()) return;
    if (decide) this.#needDecide = true;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    this.#timer = this.#ctx.o.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#pass();
    }, delay);
  }

  async #pass(): Promise<void> {
    if (!this.#coordinating || this.#ctx.closed() || !this.#ctx.election()?.isLeader()) return;
    this.#running = true;
    try {
      this.#expireMembers();
      if (this.#needDecide || this.#lastDeferred > 0) {
        this.#needDecide = false;
        await this.#decide();
      } else {
        this.trackMoves(this.#activeMembers());
      }
    } catch (err) {
      this.#ctx.o.logger.warn('ring: coordinator pass failed', { err: (err as Error)?.message });
    } finally {
      this.#running = false;
      if (this.#again) {
        this.#again = false;
        this.schedule(RECORD_DECISION_DELAY_MS, false); // #needDecide keeps what was asked
      }
    }
  }

  /** Members whose lease revision stayed unchanged for their TTL (re-checked with a read) are deleted. */
  #expireMembers(): void {
    const now = this.#ctx.o.clock.now();
    for (const [id, m] of this.#ctx.view.members) {
      if (id === this.#ctx.nodeId || this.#expiring.has(id)) continue;
      if (now - m.seenAt < m.record.ttlMs) continue;
      this.#expiring.add(id);
      void (async () => {
        try {
          const key = this.#ctx.names.member(id);
          const e = await this.#ctx.kv.get(key);
          if (!e || e.revision !== m.revision || e.operation !== 'PUT') return;
          await this.#ctx.kv.delete(key, { previousSeq: m.revision });
          this.#ctx.o.logger.info('ring: member expired', { nodeId: id, instance: m.record.instance });
          this.#ctx.emit({ type: 'member-expired', nodeId: id, instance: m.record.instance });
        } catch (err) {
          if (!isConflict(err)) this.#ctx.o.logger.debug('ring: could not expire a member', { id, err });
        } finally {
          this.#expiring.delete(id);
        }
      })();
    }
  }

  #activeMembers(): Array<{ id: string; weight: number }> {
    return [...this.#ctx.view.members.values()]
      .filter((m) => m.record.state === 'active')
      .map((m) => ({ id: m.record.nodeId, weight: m.record.weight }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async #decide(): Promise<void> {
    const v = this.#ctx.view;
    const P = this.#ctx.partitionCount;
    const clock = this.#ctx.o.clock;
    const members = this.#activeMembers();
    const current: (string | undefined)[] = new Array<string | undefined>(P);
    const previousTarget: (string | undefined)[] = new Array<string | undefined>(P);
    for (let p = 0; p < P; p++) {
      const s = v.state[p]!;
      const owner = v.recOwner[p]! >= 0 ? v.nodeNames[v.recOwner[p]!]! : undefined;
      current[p] = (s === S_OWNED || s === S_OWNING) && v.isLive(owner!, v.instance[p]!) ? owner : undefined;
      previousTarget[p] = v.targetOf(p);
    }
    const sinceChange = clock.now() - this.membershipChangedAt;
    const stable = sinceChange >= this.#ctx.o.settleMs;
    const plan = planMoves({
      partitions: P,
      members,
      pins: v.pins,
      previousTarget,
      current,
      maxConcurrentMoves: this.#ctx.o.maxConcurrentMoves,
      stable,
      initial: v.map === null,
    });
    this.#lastDeferred = plan.deferred;
    if (!stable) this.schedule(Math.max(1, Math.ceil(this.#ctx.o.settleMs - sinceChange)));
    let version = v.map?.version ?? 0;
    if (plan.changed && members.length > 0) {
      const nodes = [...new Set(plan.target.filter((t): t is string => t !== undefined))].sort();
      const idx = new Map(nodes.map((n, i) => [n, i]));
      const map: MapRecord = {
        v: 1,
        version: version + 1,
        coordinator: this.#ctx.nodeId,
        epoch: this.#ctx.election()!.epoch(),
        nodes,
        assign: plan.target.map((t) => (t === undefined ? -1 : idx.get(t)!)),
        reason: plan.reason,
        at: clock.wallNow(),
      };
      try {
        const data = encodeJson(map);
        const rev = v.map
          ? await this.#fenced!.update(this.#ctx.names.map, data, v.mapRevision)
          : await this.#fenced!.put(this.#ctx.names.map, data);
        const stored = new Uint8Array([...new TextEncoder().encode(`gcf1 ${map.epoch} p\n`), ...data]);
        v.observe({ key: this.#ctx.names.map, revision: rev, operation: 'PUT', value: stored } as never);
        version = map.version;
      } catch (err) {
        if (err instanceof FencedError) {
          this.#ctx.o.logger.warn('ring: a newer coordinator wrote the map; stepping back', {
            err: err.message,
          });
          return;
        }
        if (err instanceof WriteConflictError) {
          this.schedule(20); // the watch brings the newer map; decide again on it
          return;
        }
        throw err;
      }
    }
    if (plan.changed || plan.reason !== this.#lastReason) {
      this.#lastReason = plan.reason;
      this.#ctx.metrics.rebalance(plan.reason);
      this.#ctx.emit({
        type: 'rebalance',
        reason: plan.reason,
        version,
        started: plan.started,
        deferred: plan.deferred,
        orphans: plan.orphans,
        inProgress: plan.inProgress,
        imbalance: plan.imbalance,
        members: members.length,
      });
    }
    this.trackMoves(members);
  }

  /** Moves in progress, their durations, stuck moves, counts and imbalance (coordinator metrics). */
  trackMoves(members: Array<{ id: string; weight: number }>): void {
    const v = this.#ctx.view;
    const now = this.#ctx.o.clock.now();
    let inProgress = 0;
    let stuck = 0;
    for (let p = 0; p < this.#ctx.partitionCount; p++) {
      const t = v.targetOf(p);
      const serving = v.serving[p]! >= 0 ? v.nodeNames[v.serving[p]!] : undefined;
      const m = this.#moveSince.get(p);
      if (t === undefined || t === serving) {
        if (m) {
          this.#moveSince.delete(p);
          const tookMs = now - m.at;
          this.#ctx.metrics.handoff('move', tookMs / 1000);
          this.#ctx.emit({ type: 'move-done', partition: p, from: m.from, to: m.to, tookMs });
        }
        continue;
      }
      inProgress++;
      if (!m || m.to !== t) {
        this.#moveSince.set(p, { at: m?.at ?? now, from: serving ?? m?.from, to: t, stuck: false });
        continue;
      }
      if (now - m.at >= this.#ctx.o.stuckMoveMs) {
        stuck++;
        if (!m.stuck) {
          m.stuck = true;
          this.#ctx.o.logger.warn('ring: partition move is stuck', { partition: p, from: m.from, to: m.to });
          this.#ctx.emit({ type: 'move-stuck', partition: p, from: m.from, to: m.to, ageMs: now - m.at });
        }
      }
    }
    this.#ctx.metrics.movesInProgress(inProgress);
    this.#ctx.metrics.stuckMoves(stuck);
    const counts = v.counts();
    this.#ctx.metrics.nodeCounts(counts);
    const total = members.reduce((a, m) => a + m.weight, 0);
    let imbalance = 0;
    for (const m of members) {
      const fair = (this.#ctx.partitionCount * m.weight) / total;
      imbalance = Math.max(imbalance, (counts.get(m.id) ?? 0) / fair);
    }
    this.#ctx.metrics.imbalance(imbalance);
  }
}
