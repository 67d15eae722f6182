import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import {
  Counter,
  Gauge,
  type CounterConfiguration,
  type GaugeConfiguration,
  type Registry,
} from 'prom-client';

/**
 * Registers this process's resource metrics on `registry`, under the names Prometheus users know from
 * prom-client's default metrics: `process_resident_memory_bytes`, `process_cpu_user_seconds_total`,
 * `process_cpu_system_seconds_total`, `process_start_time_seconds`, `nodejs_heap_size_used_bytes`,
 * `nodejs_heap_size_total_bytes`, `nodejs_heap_space_size_total_bytes{space}`,
 * `nodejs_external_memory_bytes`, `nodejs_array_buffers_bytes`, plus
 * `nodejs_eventloop_utilization` (the share of time the event loop was busy since the previous scrape).
 *
 * Everything is read at scrape time: unlike prom-client's `collectDefaultMetrics`, nothing keeps a
 * timer or an observer alive, so a platform that closes leaves nothing running.
 */
export function registerProcessMetrics(registry: Registry): void {
  // Every metric here is registered on `registry` only.
  const gauge = (o: Omit<GaugeConfiguration<string>, 'registers'>) =>
    new Gauge({ ...o, registers: [registry] });
  const counter = (o: Omit<CounterConfiguration<string>, 'registers'>) =>
    new Counter({ ...o, registers: [registry] });
  const rss = gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    collect() {
      rss.set(process.memoryUsage.rss());
    },
  });
  let cpuSeen = { user: 0, system: 0 };
  const cpuUser = counter({
    name: 'process_cpu_user_seconds_total',
    help: 'User CPU time spent, in seconds.',
    collect() {
      const now = process.cpuUsage();
      cpuUser.inc((now.user - cpuSeen.user) / 1e6);
      cpuSystem.inc((now.system - cpuSeen.system) / 1e6);
      cpuSeen = now;
    },
  });
  const cpuSystem = counter({
    name: 'process_cpu_system_seconds_total',
    help: 'System CPU time spent, in seconds.',
  });
  gauge({
    name: 'process_start_time_seconds',
    help: 'Start time of the process since the Unix epoch, in seconds.',
  }).set(Math.round(performance.timeOrigin / 1000));
  const heapUsed = gauge({
    name: 'nodejs_heap_size_used_bytes',
    help: 'V8 heap in use, in bytes.',
    collect() {
      const m = process.memoryUsage();
      heapUsed.set(m.heapUsed);
      heapTotal.set(m.heapTotal);
      external.set(m.external);
      arrayBuffers.set(m.arrayBuffers);
    },
  });
  const heapTotal = gauge({ name: 'nodejs_heap_size_total_bytes', help: 'V8 heap size, in bytes.' });
  const external = gauge({
    name: 'nodejs_external_memory_bytes',
    help: 'Memory of C++ objects bound to JavaScript objects, in bytes.',
  });
  const arrayBuffers = gauge({
    name: 'nodejs_array_buffers_bytes',
    help: 'Memory of ArrayBuffers and Buffers (included in external), in bytes.',
  });
  const spaceTotal = gauge({
    name: 'nodejs_heap_space_size_total_bytes',
    help: 'Size of each V8 heap space (new, old, code, large objects, …), in bytes.',
    labelNames: ['space'],
    collect() {
      for (const sp of getHeapSpaceStatistics())
        spaceTotal.set({ space: sp.space_name.replace(/_space$/, '') }, sp.space_size);
    },
  });
  let eluSeen = performance.eventLoopUtilization();
  const elu = gauge({
    name: 'nodejs_eventloop_utilization',
    help: 'Share of time the event loop was busy since the previous scrape (0 to 1).',
    collect() {
      const now = performance.eventLoopUtilization();
      elu.set(performance.eventLoopUtilization(now, eluSeen).utilization);
      eluSeen = now;
    },
  });
}
