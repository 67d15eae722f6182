// The circuit breaker of one client target, on the client's Clock: closed until `consecutiveFailures`
// counted failures in a row, then open (calls refused at once) for `halfOpenAfterMs`, then half-open: one
// trial call goes through, its success closes the circuit and its failure opens it again.
import type { Clock } from '@gc/core';
import type { CircuitStateName } from './types.js';

/** What a {@link CircuitBreaker} is made with. */
export interface CircuitBreakerOptions {
  /** Counted failures in a row that open the circuit (>= 1; `createRpcClient` checks it). */
  readonly consecutiveFailures: number;
  /** How long the circuit stays open before it lets one trial call through, in clock ms (>= 0). */
  readonly halfOpenAfterMs: number;
  /** The clock the pause is measured on. */
  readonly clock: Clock;
  /** Whether an error counts as a failure of the target; other errors leave the count as it is. */
  readonly isFailure: (err: unknown) => boolean;
  /** Called on every state change, after it. */
  readonly onStateChange?: (state: CircuitStateName) => void;
}

/**
 * A consecutive-failures circuit breaker.
 *
 * - closed: calls run. A counted failure adds one to the count, a success sets it back to 0, an error
 *   that does not count leaves it as it is. At `consecutiveFailures` the circuit opens.
 * - open: calls are refused at once (the caller's error) until `halfOpenAfterMs` of clock time passed
 *   since it opened; then it is half-open. The state is brought up to date whenever it is read or a call
 *   arrives, so `state` reports `half-open` as soon as the pause is over.
 * - half-open: the first call is the trial and runs; calls that arrive while it runs are refused. The
 *   trial's counted failure opens the circuit again (for another `halfOpenAfterMs`); anything else (a
 *   result, or an error that does not count: the target answered) closes it.
 *
 * A call that settles after the circuit changed state since it started (a slow call from before the
 * circuit opened, say) does not move the circuit: only calls let through in the current state do.
 */
export class CircuitBreaker {
  readonly #o: CircuitBreakerOptions;
  #state: 'closed' | 'open' | 'half-open' = 'closed';
  /** Bumped on every state change: a call counts only if the state did not change while it ran. */
  #generation = 0;
  #failures = 0;
  #openedAt = 0;
  #trialRunning = false;

  constructor(o: CircuitBreakerOptions) {
    this.#o = o;
  }

  /** The state now (an open circuit whose pause is over is half-open). */
  get state(): CircuitStateName {
    if (this.#state === 'open' && this.#o.clock.now() - this.#openedAt >= this.#o.halfOpenAfterMs) {
      this.#enter('half-open');
    }
    return this.#state;
  }

  /**
   * Runs `fn` when the circuit lets it through and records its outcome; otherwise rejects with
   * `refused()` without calling `fn`.
   */
  async execute<T>(fn: () => Promise<T>, refused: () => Error): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.#trialRunning)) throw refused();
    const trial = state === 'half-open';
    const generation = this.#generation;
    if (trial) this.#trialRunning = true;
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      if (this.#generation === generation) {
        if (this.#o.isFailure(err)) this.#failure();
        else if (trial) this.#enter('closed');
      }
      throw err;
    } finally {
      if (trial && this.#generation === generation) this.#trialRunning = false;
    }
    if (this.#generation === generation) {
      if (trial) this.#enter('closed');
      else this.#failures = 0;
    }
    return result;
  }

  #failure(): void {
    if (this.#state === 'half-open' || ++this.#failures >= this.#o.consecutiveFailures) {
      this.#openedAt = this.#o.clock.now();
      this.#enter('open');
    }
  }

  #enter(state: 'closed' | 'open' | 'half-open'): void {
    this.#state = state;
    this.#generation++;
    this.#failures = 0;
    this.#trialRunning = false;
    this.#o.onStateChange?.(state);
  }
}
