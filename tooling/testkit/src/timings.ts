/**
 * Election timings for tests that fail over: a lease of 1.5 s renewed every 300 ms (the leader
 * gives up after 1 s without a renewal), contenders polling every 100 ms and waiting 200 ms after a
 * step-down, so a new leader follows a crash within about 1.6 s. A fresh object on every call.
 *
 * @example
 * const app = platform.app('orders', { election: fastElection() });
 */
export function fastElection(): {
  ttlMs: number;
  renewIntervalMs: number;
  renewDeadlineMs: number;
  pollIntervalMs: number;
  cooldownMs: number;
} {
  return { ttlMs: 1500, renewIntervalMs: 300, renewDeadlineMs: 1000, pollIntervalMs: 100, cooldownMs: 200 };
}
