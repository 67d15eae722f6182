import type { ReplicaOptions } from '../types.js';
import { ReplicaStateName } from '../types.js';
import type { ReplicaContext } from './context.js';

/**
 * Refusals and stalls of the consume loop: the refusal the last bootstrap was for, consecutive failures,
 * the `stalled` state with its backoff, and the way out of it (progress past the refused message).
 */
export class Stalls {
  readonly #ctx: ReplicaContext;
  readonly #o: ReplicaOptions;
  /**
   * The refusal the last bootstrap was for (error class @ stream seq), the newest snapshot then, and the
   * refused message's seq; cleared once the replica gets past it.
   */
  stuck: { key: string; reason: string; seq: number; snapshotTxid: number } | undefined;
  /** Consecutive failures of the consume loop (refusals, bootstraps and errors alike). */
  failures = 0;
  lastErrorMessage: string | undefined;
  /** A `stalled` event went out and no `recovered` since. */
  #stallReported = false;

  constructor(ctx: ReplicaContext) {
    this.#ctx = ctx;
    this.#o = ctx.o;
  }

  /** Goes (or stays) stalled for `reason`; returns how long to wait before the next attempt. */
  stall(reason: string): number {
    const wait = Math.min(
      this.#o.maxRetryDelayMs,
      this.#o.retryDelayMs * 2 ** Math.min(16, Math.max(0, this.failures - 1)),
    );
    const first = this.#ctx.state.state !== ReplicaStateName.Stalled || this.#ctx.state.reason !== reason;
    this.#ctx.setState(ReplicaStateName.Stalled, reason, this.#o.clock.wallNow() + wait);
    if (first) {
      this.#stallReported = true;
      this.#o.logger.error('replica stalled', { reason, retryInMs: wait });
      this.#ctx.emit({ type: 'stalled', reason, retryInMs: wait });
    }
    return wait;
  }

  /**
   * A batch was applied. A stall on a refusal ends only once the replica got past the refused message (a
   * replay from a bootstrap that ends at the same refusal is not progress).
   */
  progress(): void {
    this.#ctx.progressAt = this.#o.clock.now();
    if (this.stuck && this.#ctx.pos.seq < this.stuck.seq) return;
    this.stuck = undefined;
    this.failures = 0;
    this.lastErrorMessage = undefined;
    if (this.#ctx.state.state !== ReplicaStateName.Following) this.#ctx.setState(ReplicaStateName.Following);
    if (this.#stallReported) {
      this.#stallReported = false;
      this.#ctx.emit({ type: 'recovered', txid: this.#ctx.pos.txid });
    }
  }
}
