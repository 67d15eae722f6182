/** When a backend's own restart policy restarts it after it exits. */
export const RestartMode = { Never: 'never', OnFailure: 'on-failure', Always: 'always' } as const;
/** One of {@link RestartMode}. */
export type RestartModeValue = (typeof RestartMode)[keyof typeof RestartMode];

/** Restart policy: which exits restart, with exponential backoff, at most `maxRestarts` per `windowMs`. */
export interface RestartPolicy {
  /** Which exits cause a restart. Default `on-failure` (non-zero exit code or a signal). */
  mode: RestartModeValue;
  /** Most restarts within `windowMs` before giving up. Default `5`. */
  maxRestarts: number;
  /** Sliding window for `maxRestarts`, in ms. Default `60000`. */
  windowMs: number;
  /** Delay before the first restart, in ms. Default `250`. */
  initialBackoffMs: number;
  /** Upper bound of the delay, in ms. Default `10000`. */
  maxBackoffMs: number;
  /** Growth factor of the delay per consecutive restart. Default `2`. */
  factor: number;
}

/** Defaults of {@link RestartPolicy}. */
export function defaultRestartPolicy(): RestartPolicy {
  return {
    mode: 'on-failure',
    maxRestarts: 5,
    windowMs: 60_000,
    initialBackoffMs: 250,
    maxBackoffMs: 10_000,
    factor: 2,
  };
}

/** What {@link restartDecision} decided. */
export type RestartDecision =
  { restart: true; delayMs: number; attempt: number } | { restart: false; reason: string };

/**
 * Decides whether to restart after an exit. `history` holds the monotonic times of earlier
 * restarts (the caller appends `now` when it restarts). Pure, for unit tests on a fake clock.
 */
export function restartDecision(
  policy: RestartPolicy,
  exit: { exitCode: number | null; signal: string | null },
  history: readonly number[],
  now: number,
): RestartDecision {
  const failed = exit.signal !== null || (exit.exitCode ?? 1) !== 0;
  if (policy.mode === 'never') return { restart: false, reason: 'restart policy is never' };
  if (policy.mode === 'on-failure' && !failed)
    return { restart: false, reason: 'exited with code 0 and the policy restarts on failure only' };
  const recent = history.filter((t) => now - t < policy.windowMs);
  if (recent.length >= policy.maxRestarts) {
    return {
      restart: false,
      reason: `restarted ${recent.length} times within ${policy.windowMs} ms (limit ${policy.maxRestarts})`,
    };
  }
  const delayMs = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.factor ** recent.length);
  return { restart: true, delayMs, attempt: recent.length + 1 };
}
