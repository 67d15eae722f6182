// What this member serves: the local state of each partition, the epoch and record revision it wrote, the
// calls in flight and their drains, and the admission of calls (`ring.admit`).
import { NotOwnerError } from '@gc/rpc';
import { partitionOfKey } from './hash.js';
import type { RingMetrics } from './metrics.js';
import type { Admission, RingEvent } from './types.js';
import type { RingView } from './view.js';

/** Local state of a partition on this member. */
export const L_IDLE = 0;
export const L_CLAIMING = 1;
export const L_OWNING = 2;
export const L_SERVING = 3;
export const L_RELEASING = 4;

/** What the local partition state uses of its ring member. */
export interface LocalContext {
  readonly app: string;
  readonly nodeId: string;
  readonly partitionCount: number;
  readonly view: RingView;
  readonly metrics: RingMetrics;
  emit(event: RingEvent): void;
  /** True while this member's lease lets it serve. */
  leaseValid(): boolean;
}

/** The partitions of one ring member, as this member sees them (tables indexed by partition). */
export class LocalPartitions {
  readonly #ctx: LocalContext;
  /** `L_*` state per partition. */
  readonly state: Uint8Array;
  /** The epoch of this member's record per partition. */
  readonly myEpoch: Float64Array;
  /** The revision of this member's last write of each partition record. */
  readonly myRev: Float64Array;
  /** Calls admitted and not yet finished, per partition. */
  readonly inflight: Int32Array;
  /** Wakes a release waiting for the calls in flight of a partition to finish. */
  readonly drains = new Map<number, () => void>();
  /** Aborts the onOwn of a partition. */
  readonly ownAbort = new Map<number, AbortController>();
  /** Partitions with a claim or release under way. */
  readonly busy = new Set<number>();

  constructor(ctx: LocalContext) {
    this.#ctx = ctx;
    const P = ctx.partitionCount;
    this.state = new Uint8Array(P);
    this.myEpoch = new Float64Array(P);
    this.myRev = new Float64Array(P);
    this.inflight = new Int32Array(P);
  }

  /** Admits a call for `key` when this member serves its partition, or throws NotOwnerError. */
  admit(key: string, method: string | undefined): Admission {
    const p = partitionOfKey(key, this.#ctx.partitionCount);
    const l = this.state[p]!;
    if (l === L_SERVING && this.#ctx.leaseValid()) {
      this.inflight[p]!++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        if (--this.inflight[p]! === 0) this.drains.get(p)?.();
      };
    }
    const reason =
      l === L_RELEASING
        ? 'moving'
        : l === L_OWNING || l === L_CLAIMING
          ? 'owning'
          : l === L_SERVING
            ? 'lease-lost'
            : 'not-owner';
    throw new NotOwnerError(this.#ctx.app, method ?? '?', this.#ctx.nodeId, reason, {
      partition: p,
      revision: this.#ctx.view.revision[p]!,
    });
  }

  /** Stops serving partition `p` at once (no hand-off). */
  drop(p: number, reason: string): void {
    const epoch = this.myEpoch[p]!;
    this.state[p] = L_IDLE;
    this.ownAbort.get(p)?.abort(new Error(reason));
    this.ownAbort.delete(p);
    this.drains.get(p)?.();
    this.#ctx.emit({ type: 'lost', partition: p, epoch, reason });
    this.updateOwnedMetric();
  }

  /** Drops every partition that is not idle; returns how many. */
  dropAll(reason: string): number {
    let n = 0;
    for (let p = 0; p < this.#ctx.partitionCount; p++) {
      if (this.state[p] === L_IDLE) continue;
      n++;
      this.drop(p, reason);
    }
    return n;
  }

  /** True when any partition is not idle. */
  hasAny(): boolean {
    for (let p = 0; p < this.#ctx.partitionCount; p++) if (this.state[p] !== L_IDLE) return true;
    return false;
  }

  /** True when this member serves partition `p` now. */
  serves(p: number): boolean {
    return this.state[p] === L_SERVING && this.#ctx.leaseValid();
  }

  /** This member's epoch of partition `p` while it owns, serves or releases it. */
  epochOf(p: number): number | undefined {
    const l = this.state[p]!;
    return l === L_OWNING || l === L_SERVING || l === L_RELEASING ? this.myEpoch[p] : undefined;
  }

  /** The partitions this member serves now. */
  served(): number[] {
    const out: number[] = [];
    if (!this.#ctx.leaseValid()) return out;
    for (let p = 0; p < this.#ctx.partitionCount; p++) if (this.state[p] === L_SERVING) out.push(p);
    return out;
  }

  /** Partitions per phase, for `ring.status()`. */
  counts(): { serving: number; owning: number; releasing: number } {
    let serving = 0;
    let owning = 0;
    let releasing = 0;
    for (let p = 0; p < this.#ctx.partitionCount; p++) {
      const l = this.state[p];
      if (l === L_SERVING) serving++;
      else if (l === L_OWNING || l === L_CLAIMING) owning++;
      else if (l === L_RELEASING) releasing++;
    }
    return { serving, owning, releasing };
  }

  updateOwnedMetric(): void {
    let n = 0;
    for (let p = 0; p < this.#ctx.partitionCount; p++) if (this.state[p] === L_SERVING) n++;
    this.#ctx.metrics.owned(n);
  }
}
