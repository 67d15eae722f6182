import { Counter, Gauge, type Registry } from 'prom-client';

// The Prometheus metrics of `ReplicatedDatabase` (component.ts).

/** Metrics of replicated databases (registered once per registry). */
export interface WalMetrics {
  txid: Gauge<'app' | 'role'>;
  lagTx: Gauge<'app'>;
  lagSeconds: Gauge<'app'>;
  broken: Gauge<'app'>;
  unacked: Gauge<'app'>;
  bootstraps: Counter<'app' | 'from'>;
  refusals: Counter<'app'>;
  resyncs: Counter<'app'>;
  unreplicated: Counter<'app'>;
  stalls: Counter<'app'>;
}

const metricsByRegistry = new WeakMap<Registry, WalMetrics>();
export function walMetrics(registry: Registry): WalMetrics {
  let m = metricsByRegistry.get(registry);
  if (m) return m;
  const g = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const c = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  m = {
    txid: g('gc_wal_txid', 'Last txid applied (replica) or acknowledged by the stream (primary)', [
      'app',
      'role',
    ]),
    lagTx: g('gc_wal_replica_lag_transactions', "Transactions behind the history's tip", ['app']),
    lagSeconds: g('gc_wal_replica_lag_seconds', 'How long the replica has been behind', ['app']),
    broken: g('gc_wal_broken', '1 while replication of the app on this node is stalled, refused or failing', [
      'app',
    ]),
    unacked: g(
      'gc_wal_primary_unacked_transactions',
      'Commits captured but not yet acknowledged by the stream',
      ['app'],
    ),
    bootstraps: c('gc_wal_bootstraps_total', 'Replica bootstraps by source', ['app', 'from']),
    refusals: c(
      'gc_wal_refusals_total',
      'Stream transactions a replica refused (gap, divergence, corruption)',
      ['app'],
    ),
    resyncs: c('gc_wal_resyncs_total', 'Whole-database publishes by a primary', ['app']),
    unreplicated: c('gc_wal_unreplicated_writes_total', "A deposed or stale copy's writes set aside", [
      'app',
    ]),
    stalls: c('gc_wal_stalls_total', 'Times a replica stalled', ['app']),
  };
  metricsByRegistry.set(registry, m);
  return m;
}
