// Prometheus counters of @gc/events.
import { sharedCounter } from '@gc/core';
import type { Counter, Registry } from 'prom-client';

/** The events counters (absent without a registry). */
export interface Metrics {
  published: Counter | undefined;
  handled: Counter | undefined;
}

/** The counters in `registry`, shared by every instance that registers there. */
export function metrics(registry: Registry | undefined): Metrics {
  if (!registry) return { published: undefined, handled: undefined };
  const get = (name: string, help: string, labelNames: string[]) =>
    sharedCounter(registry, name, help, labelNames);
  return {
    published: get('gc_events_published_total', 'Events published', ['platform', 'app', 'scope']),
    handled: get(
      'gc_events_handled_total',
      'Events received by result (ok, failed, malformed, dead_lettered)',
      ['platform', 'app', 'scope', 'result'],
    ),
  };
}
