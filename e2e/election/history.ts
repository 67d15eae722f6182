// A small, reusable checker for leadership histories recorded in e2e scenarios.
import { createFence, EPOCH_HEADER, FencedError, parseEpoch } from '@gc/core';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';

/** One recorded event: `act` = the node acted as leader (isLeader() was true) with `epoch` at `at` (ms). */
export interface HistoryEvent {
  type: string;
  node: string;
  at: number;
  epoch?: number;
  [k: string]: unknown;
}

/** The interval during which one node acted with one epoch. */
export interface LeadershipInterval {
  node: string;
  epoch: number;
  from: number;
  to: number;
}

/**
 * Intervals of acting leadership, one per (node, epoch), from first to last `act`. `cutoffs` ends a node's
 * interval early (the instant it was killed) — acts cannot come after a kill anyway.
 */
export function intervals(events: HistoryEvent[]): LeadershipInterval[] {
  const map = new Map<string, LeadershipInterval>();
  for (const e of events) {
    if (e.type !== 'act' || e.epoch === undefined) continue;
    const k = `${e.node}@${e.epoch}`;
    const cur = map.get(k);
    if (!cur) map.set(k, { node: e.node, epoch: e.epoch, from: e.at, to: e.at });
    else {
      cur.from = Math.min(cur.from, e.at);
      cur.to = Math.max(cur.to, e.at);
    }
  }
  return [...map.values()].sort((a, b) => a.from - b.from);
}

/** Problems found in a history: overlapping leadership, epochs not increasing, a node acting after losing. */
export function checkHistory(events: HistoryEvent[], opts: { toleranceMs?: number } = {}): string[] {
  const tol = opts.toleranceMs ?? 2;
  const problems: string[] = [];
  const iv = intervals(events);
  for (let i = 1; i < iv.length; i++) {
    const prev = iv[i - 1]!;
    const cur = iv[i]!;
    if (cur.epoch <= prev.epoch) {
      problems.push(`epoch order: ${cur.node}@${cur.epoch} started after ${prev.node}@${prev.epoch}`);
    }
  }
  for (let i = 0; i < iv.length; i++) {
    for (let j = i + 1; j < iv.length; j++) {
      const a = iv[i]!;
      const b = iv[j]!;
      if (b.from < a.to - tol) {
        problems.push(
          `overlap: ${a.node}@${a.epoch} [${a.from.toFixed(1)}, ${a.to.toFixed(1)}] and ${b.node}@${b.epoch} [${b.from.toFixed(1)}, ${b.to.toFixed(1)}]`,
        );
      }
    }
  }
  // A node never acts with an epoch after it reported losing or stepping down from it.
  const ended = new Map<string, number>();
  for (const e of [...events].sort((x, y) => x.at - y.at)) {
    const k = `${e.node}@${e.epoch}`;
    if (e.type === 'lost' || e.type === 'stepped-down') ended.set(k, e.at);
    if (e.type === 'act' && ended.has(k))
      problems.push(`${e.node} acted with epoch ${e.epoch} after losing it`);
  }
  return problems;
}

/** A fenced register served on NATS: accepts a write only when its epoch is ≥ the highest seen. */
export interface FencedRegister {
  readonly subject: string;
  readonly writes: Array<{ at: number; node: string; epoch: number; accepted: boolean }>;
  close(): void;
}

export function serveFencedRegister(nc: NatsConnection, subject: string): FencedRegister {
  const fence = createFence();
  const writes: FencedRegister['writes'] = [];
  const sub: Subscription = nc.subscribe(subject, {
    callback: (_err, msg) => {
      const epoch = parseEpoch(msg.headers?.get(EPOCH_HEADER));
      const node = msg.string();
      const at = Number(process.hrtime.bigint()) / 1e6;
      if (!epoch) {
        msg.respond('bad epoch');
        return;
      }
      try {
        fence.check(epoch, `register write by ${node}`);
        writes.push({ at, node, epoch, accepted: true });
        msg.respond('ok');
      } catch (err) {
        if (!(err instanceof FencedError)) throw err;
        writes.push({ at, node, epoch, accepted: false });
        msg.respond('fenced');
      }
    },
  });
  return { subject, writes, close: () => sub.unsubscribe() };
}

/**
 * Leadership as each node believed it, one interval per grant, from the events a node reports: from its
 * `acquired` event to the first of its `lost`/`stepped-down` event for that epoch, the instant it was killed
 * (`killed` event), and its renew deadline (`renewDeadlineMs` after sending the last grant or renew that
 * succeeded: `isLeader()` is false from then on, whether or not the process ran). Send times come from the
 * events' `sentAtMs` (cross-process time); events without it fall back to the reply time minus the latency
 * (`renewed`) or the emit time (`acquired`), which can only make an interval longer.
 */
export function grantIntervals(events: HistoryEvent[], renewDeadlineMs: number): LeadershipInterval[] {
  const sorted = [...events].sort((a, b) => a.at - b.at);
  const open = new Map<string, LeadershipInterval & { lastSent: number }>();
  const done: LeadershipInterval[] = [];
  const close = (node: string, at: number) => {
    for (const [k, iv] of open) {
      if (iv.node !== node) continue;
      done.push({
        node: iv.node,
        epoch: iv.epoch,
        from: iv.from,
        to: Math.min(at, iv.lastSent + renewDeadlineMs),
      });
      open.delete(k);
    }
  };
  for (const e of sorted) {
    const sent = typeof e.sentAtMs === 'number' ? e.sentAtMs : undefined;
    if (e.type === 'acquired' && e.epoch !== undefined) {
      close(e.node, e.at); // a node holds one grant at a time
      open.set(`${e.node}@${e.epoch}`, {
        node: e.node,
        epoch: e.epoch,
        from: e.at,
        to: e.at,
        lastSent: sent ?? e.at,
      });
    } else if (e.type === 'renewed' && e.epoch !== undefined) {
      const iv = open.get(`${e.node}@${e.epoch}`);
      const s = sent ?? e.at - (typeof e.latencyMs === 'number' ? e.latencyMs : 0);
      if (iv && s < iv.lastSent + renewDeadlineMs) iv.lastSent = Math.max(iv.lastSent, s);
    } else if (e.type === 'lost' || e.type === 'stepped-down' || e.type === 'killed' || e.type === 'closed') {
      close(e.node, e.at);
    }
  }
  for (const iv of open.values()) {
    done.push({ node: iv.node, epoch: iv.epoch, from: iv.from, to: iv.lastSent + renewDeadlineMs });
  }
  return done.sort((a, b) => a.from - b.from);
}

/** Pairs of intervals of different grants that overlap by more than `toleranceMs`. */
export function overlaps(iv: LeadershipInterval[], toleranceMs = 0): string[] {
  const problems: string[] = [];
  const sorted = [...iv].sort((a, b) => a.from - b.from);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j]!.from < sorted[i]!.to; j++) {
      const a = sorted[i]!;
      const b = sorted[j]!;
      const overlap = Math.min(a.to, b.to) - b.from;
      if (overlap > toleranceMs) {
        problems.push(
          `overlapping grants: ${a.node}@${a.epoch} [${a.from.toFixed(1)}, ${a.to.toFixed(1)}] and ${b.node}@${b.epoch} [${b.from.toFixed(1)}, ${b.to.toFixed(1)}] (${overlap.toFixed(1)} ms)`,
        );
      }
    }
  }
  return problems;
}
