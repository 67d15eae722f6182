// Helpers shared by the election e2e files: spawning election nodes and collecting their history.
import { spawnNode, type ChildNode } from '@gc/testkit';
import type { HistoryEvent } from './history.js';

const fixture = new URL('./fixtures/node.ts', import.meta.url).pathname;

/** A running election node (child process) and the events it sent. */
export interface ElectionNode {
  id: string;
  child: ChildNode;
  events(): HistoryEvent[];
  last(type: string): HistoryEvent | undefined;
}

/** Where all nodes of a scenario record their events (kept across restarts of a node). */
export class Scenario {
  readonly nodes = new Map<string, ElectionNode>();
  readonly retired: HistoryEvent[] = [];
  /** Events the test itself records (for example `killed`). */
  readonly notes: HistoryEvent[] = [];

  /** Records an event of the test (it joins {@link Scenario.history}). */
  note(e: HistoryEvent): void {
    this.notes.push(e);
  }

  /** SIGKILLs a node and records a `killed` event at the instant the signal was sent. */
  async kill(node: ElectionNode): Promise<void> {
    const at = now();
    await node.child.kill('SIGKILL');
    this.note({ type: 'killed', node: node.id, at });
  }

  async start(id: string, env: Record<string, string>): Promise<ElectionNode> {
    const child = spawnNode(fixture, { env: { NODE_ID: id, ...env }, label: id });
    const node: ElectionNode = {
      id,
      child,
      events: () => child.messages<HistoryEvent>(),
      last: (type) =>
        child
          .messages<HistoryEvent>()
          .filter((e) => e.type === type)
          .at(-1),
    };
    const old = this.nodes.get(id);
    if (old) this.retired.push(...old.events());
    this.nodes.set(id, node);
    await child.waitForMessage<HistoryEvent>((m) => m.type === 'ready', 20_000, `${id} ready`);
    return node;
  }

  /** Every event of every node (including earlier incarnations), sorted by time. */
  history(): HistoryEvent[] {
    const all = [...this.retired, ...this.notes];
    for (const n of this.nodes.values()) all.push(...n.events());
    return all.sort((a, b) => a.at - b.at);
  }

  /** Acquisitions after `since`. */
  acquisitions(since: number): HistoryEvent[] {
    return this.history().filter((e) => e.type === 'acquired' && e.at > since);
  }

  /** The node that acquired last, if it is still running. */
  leader(): ElectionNode | undefined {
    const a = this.history()
      .filter((e) => e.type === 'acquired')
      .at(-1);
    const n = a && this.nodes.get(a.node);
    return n?.child.running ? n : undefined;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.child.stop()));
  }
}

/** Cross-process timestamp, the same base the fixture uses. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;
