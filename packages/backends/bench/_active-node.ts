// One node of an active-passive app, run inside a network namespace (`ip netns exec`) by the
// backend-failover bench and the e2e failover test: a VIP on eth0, the service fixture behind the
// process backend, and the active coordinator between them. Driven over IPC:
//   in:  {cmd:'activate', epoch}  {cmd:'deactivate'}
//   out: {type:'ready'}  {type:'active', totalMs, phases, backendPid}  {type:'passive'}  {type:'error', message}
// SIGTERM: close (stops the service, releases the VIP) and exit 0.
import { createActiveCoordinator, processBackend } from '@gc/backends';
import { createVip } from '@gc/vip';
import { HTTP_SERVICE_FIXTURE } from '@gc/testkit';

const port = Number(process.env.SERVICE_PORT ?? 8080);
const service = HTTP_SERVICE_FIXTURE;
let epoch: number | undefined;

const vip = createVip({
  address: process.env.VIP_ADDRESS!,
  interface: 'eth0',
  currentEpoch: () => epoch,
  verifyIntervalMs: 0,
  arp: {
    enabled: true,
    mode: 'request',
    count: Number(process.env.ARP_COUNT ?? 3),
    intervalMs: 50,
    flavor: undefined,
  },
});
const backend = await processBackend.create(
  {
    command: process.execPath,
    args: [service],
    env: { PORT: String(port), HOST: '0.0.0.0' },
    health: { type: 'http', url: `http://127.0.0.1:${port}/`, timeoutMs: 500 },
    healthIntervalMs: 10,
    graceMs: 1000,
  },
  { name: 'svc' },
);
const coordinator = createActiveCoordinator({
  steps: {
    vip: {
      activate: async (ctx) => void (await vip.acquire(ctx.epoch)),
      deactivate: (ctx) => vip.release(ctx.reason ?? 'demoted'),
    },
    backend,
  },
  healthIntervalMs: 500,
});

process.on('message', (m: { cmd: string; epoch?: number }) => {
  if (m.cmd === 'activate') {
    epoch = m.epoch;
    coordinator.activate(m.epoch!).then(
      async (r) =>
        process.send?.({
          type: 'active',
          totalMs: r.totalMs,
          phases: r.phases.map((p) => ({ phase: p.phase, durationMs: p.durationMs })),
          backendPid: (await backend.status()).pid,
        }),
      (err: Error) => process.send?.({ type: 'error', message: err.message }),
    );
  }
  if (m.cmd === 'deactivate') {
    coordinator.deactivate('told to').then(
      () => process.send?.({ type: 'passive' }),
      (err: Error) => process.send?.({ type: 'error', message: err.message }),
    );
  }
});
process.on('SIGTERM', () => {
  void coordinator
    .close()
    .then(() => vip.close())
    .then(
      () => process.exit(0),
      () => process.exit(3),
    );
});
process.send?.({ type: 'ready' });
