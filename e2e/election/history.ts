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
      const at = performance.timeOrigin + performance.now();
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
