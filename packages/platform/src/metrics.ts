import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The platform's own metrics (packages add theirs to the same registry). */
export interface PlatformMetrics {
  registry: Registry;
  /** 1 while the app is active on this node. */
  appActive: Gauge<'app'>;
  /** Hook failures and timeouts. */
  hookFailures: Counter<'app' | 'hook' | 'timed_out'>;
  /** Duration of activate (onActive and what precedes it) and deactivate transitions. */
  transitionSeconds: Histogram<'app' | 'transition'>;
  /**
   * Duration of each phase of a successful activation (`database`, `vip`, `backend`, `components`,
   * `onActive`, …): where a failover's time goes, per app.
   */
  activationPhaseSeconds: Histogram<'app' | 'phase'>;
}

/** Registers the platform metrics on `registry`. */
export function createPlatformMetrics(registry: Registry): PlatformMetrics {
  return {
    registry,
    appActive: new Gauge({
      name: 'gc_app_active',
      help: 'Whether the app is active on this node (1) or not (0)',
      labelNames: ['app'],
      registers: [registry],
    }),
    hookFailures: new Counter({
      name: 'gc_hook_failures_total',
      help: 'Hook calls that threw or timed out',
      labelNames: ['app', 'hook', 'timed_out'],
      registers: [registry],
    }),
    transitionSeconds: new Histogram({
      name: 'gc_app_transition_seconds',
      help: 'Duration of app transitions (activate, deactivate)',
      labelNames: ['app', 'transition'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    activationPhaseSeconds: new Histogram({
      name: 'gc_app_activation_phase_seconds',
      help: 'Duration of each phase of an app activation (database, vip, backend, components, onActive)',
      labelNames: ['app', 'phase'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}
