import { sharedGauge, sharedHistogram } from '@gc/core';
import type { Registry } from 'prom-client';
import { ElectionState, type ElectionStateValue } from './types.js';

/** Transitions whose durations are recorded in `gc_election_transition_seconds`. */
export type Transition = 'acquire' | 'renew' | 'step_down' | 'lost';

/** The metrics one election reports (no-ops when no registry was given). */
export interface ElectionMetrics {
  epoch(epoch: number): void;
  state(state: ElectionStateValue): void;
  transition(kind: Transition, seconds: number): void;
}

const noop: ElectionMetrics = { epoch: () => undefined, state: () => undefined, transition: () => undefined };

/**
 * Metrics on `registry` (shared by every election in the process, told apart by labels):
 * - `gc_election_epoch{bucket,key,node}`: epoch of the current grant (this node's while leader);
 * - `gc_election_state{bucket,key,node,state}`: 1 for the current state, 0 for the others;
 * - `gc_election_transition_seconds{bucket,key,node,transition}`: durations of acquire (contending → leader),
 *   renew (send → reply), step_down (request → lease deleted), lost (last good renew sent → demotion).
 */
export function electionMetrics(
  registry: Registry | undefined,
  labels: { bucket: string; key: string; node: string },
): ElectionMetrics {
  if (!registry) return noop;
  const epoch = sharedGauge(registry, 'gc_election_epoch', 'Fencing epoch of the current leadership grant', [
    'bucket',
    'key',
    'node',
  ]);
  const state = sharedGauge(
    registry,
    'gc_election_state',
    'Election state of this node (1 for the current state)',
    ['bucket', 'key', 'node', 'state'],
  );
  const transition = sharedHistogram(
    registry,
    'gc_election_transition_seconds',
    'Duration of election transitions',
    ['bucket', 'key', 'node', 'transition'],
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10],
  );
  return {
    epoch: (e) => epoch.set(labels, e),
    state: (s) => {
      for (const v of Object.values(ElectionState)) state.set({ ...labels, state: v }, v === s ? 1 : 0);
    },
    transition: (kind, seconds) => transition.observe({ ...labels, transition: kind }, seconds),
  };
}
