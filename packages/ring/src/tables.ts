// The routing tables of a ring view: partition record states as small integers, one typed array per
// record field, the interned node names, and the reads over them (owners, targets, records, snapshots).
import { UnknownPartitionError } from './errors.js';
import { partitionOfKey } from './hash.js';
import type { MapRecord, RingNames } from './records.js';
import type { MemberRecord, PartitionRecord, PartitionStateValue, RingSnapshot } from './types.js';

/**
 * `partition` when it is one of a ring's `partitions` (an integer in 0 … partitions - 1); otherwise throws
 * {@link UnknownPartitionError}.
 */
export function checkPartition(partition: unknown, partitions: number): number {
  if (
    typeof partition !== 'number' ||
    !Number.isInteger(partition) ||
    partition < 0 ||
    partition >= partitions
  )
    throw new UnknownPartitionError(partition, partitions);
  return partition;
}

/** Partition record states as small integers in the view's tables. */
export const S_NONE = 0;
export const S_OWNING = 1;
export const S_OWNED = 2;
export const S_RELEASED = 3;
export const STATE_NAME: (PartitionStateValue | null)[] = [null, 'owning', 'owned', 'released'];

/** A member in the view, with when this node first saw its current revision (monotonic ms). */
export interface ViewMember {
  record: MemberRecord;
  revision: number;
  seenAt: number;
}

/**
 * The state a `RingView` keeps of an app's ring bucket: the serving owner per partition as an index into an
 * interned node-name list, so `ownerOf(key)` is a hash and two array reads, allocation-free.
 */
export class RingTables {
  readonly partitions: number;
  readonly names: RingNames;
  /** Index into `nodeNames` of the owner named by each partition record, -1 for none. */
  readonly recOwner: Int32Array;
  /** Serving owner per partition (`owned` records only), -1 otherwise: the routing table. */
  readonly serving: Int32Array;
  readonly state: Uint8Array;
  readonly epoch: Float64Array;
  readonly revision: Float64Array;
  readonly instance: string[];
  /** The coordinator map's target per partition (index into `nodeNames`), -1 for none. */
  readonly target: Int32Array;
  readonly nodeNames: string[] = [];
  readonly #nodeIndex = new Map<string, number>();
  readonly members = new Map<string, ViewMember>();
  map: MapRecord | null = null;
  mapRevision = 0;
  pinsRevision = 0;
  pins = new Map<number, string>();
  coordinator: string | null = null;
  /** Increases with every change seen. */
  version = 0;
  /** Highest epoch seen per partition (survives a record this node cannot read). */
  readonly highEpoch: Float64Array;

  constructor(names: RingNames, partitions: number) {
    this.names = names;
    const P = (this.partitions = partitions);
    this.recOwner = new Int32Array(P).fill(-1);
    this.serving = new Int32Array(P).fill(-1);
    this.target = new Int32Array(P).fill(-1);
    this.state = new Uint8Array(P);
    this.epoch = new Float64Array(P);
    this.highEpoch = new Float64Array(P);
    this.revision = new Float64Array(P);
    this.instance = new Array<string>(P).fill('');
  }

  nodeIndex(id: string): number {
    let i = this.#nodeIndex.get(id);
    if (i === undefined) {
      i = this.nodeNames.length;
      this.nodeNames.push(id);
      this.#nodeIndex.set(id, i);
    }
    return i;
  }

  /** The current record of `p` as a value (null: none). */
  record(p: number): PartitionRecord | null {
    const s = this.state[p]!;
    if (s === S_NONE) return null;
    return {
      v: 1,
      owner: this.nodeNames[this.recOwner[p]!]!,
      instance: this.instance[p]!,
      epoch: this.epoch[p]!,
      state: STATE_NAME[s]!,
      at: 0,
    };
  }

  /** True when `nodeId`'s live member record has `instance`. */
  isLive(nodeId: string, instance: string): boolean {
    return this.members.get(nodeId)?.record.instance === instance;
  }

  /** The serving owner of `key` (allocation-free). */
  ownerOf(key: string): string | undefined {
    const i = this.serving[partitionOfKey(key, this.partitions)]!;
    return i < 0 ? undefined : this.nodeNames[i];
  }

  targetOf(p: number): string | undefined {
    const i = this.target[p]!;
    return i < 0 ? undefined : this.nodeNames[i];
  }

  /** Partitions served per node. */
  counts(): Map<string, number> {
    const c = new Map<string, number>();
    for (let p = 0; p < this.partitions; p++) {
      const i = this.serving[p]!;
      if (i >= 0) {
        const n = this.nodeNames[i]!;
        c.set(n, (c.get(n) ?? 0) + 1);
      }
    }
    return c;
  }

  snapshot(platform: string, app: string, self: string | undefined): RingSnapshot {
    const owners: (string | null)[] = [];
    const states: (PartitionStateValue | null)[] = [];
    const epochs: number[] = [];
    const targets: (string | null)[] = [];
    const moving: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const s = this.serving[p]!;
      owners.push(s < 0 ? null : this.nodeNames[s]!);
      states.push(STATE_NAME[this.state[p]!]!);
      epochs.push(this.epoch[p]!);
      const t = this.targetOf(p) ?? null;
      targets.push(t);
      if (t !== null && t !== owners[p]) moving.push(p);
    }
    const counts = this.counts();
    return {
      platform,
      app,
      partitions: this.partitions,
      version: this.version,
      owners,
      states,
      epochs,
      targets,
      counts: Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : 1))),
      moving,
      members: [...this.members.values()]
        .map((m) => ({
          nodeId: m.record.nodeId,
          instance: m.record.instance,
          weight: m.record.weight,
          state: m.record.state,
          ttlMs: m.record.ttlMs,
          startedAt: m.record.startedAt,
          partitions: counts.get(m.record.nodeId) ?? 0,
          self: m.record.nodeId === self,
        }))
        .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1)),
      coordinator: this.coordinator,
      pins: Object.fromEntries(this.pins),
      mapVersion: this.map?.version ?? 0,
    };
  }
}
