// One host's gc node in the vip-vs-keepalived bench, run inside the host's network namespace: an
// active-passive app with a VIP on eth0 and a process backend (the responder answering the host's name),
// election defaults (TTL 3 s) with or without fast failover; everything else as a user gets it.
// env: PLATFORM, NODE_ID (the host's name), NATS_URL, DATA_DIR, VIP, PORT, FAST ('1'), WARM ('1': backendRuns
// 'always', the responder runs on the standby too, as keepalived's do).
// IPC out: ready, active {epoch, backendPid, at}, phases {phases}.
import { platformFromEnv } from './_env-node.js';
import { RESPONDER_SCRIPT } from './_vip-responder.js';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const port = Number(process.env.PORT);
const platform = await platformFromEnv();
const app = platform.app('web', {
  election: { fastFailover: process.env.FAST === '1' },
  vip: { address: process.env.VIP!, interface: 'eth0' },
  ...(process.env.WARM === '1' ? { backendRuns: 'always' as const } : {}),
  backend: {
    type: 'process',
    options: {
      command: process.execPath,
      args: ['-e', RESPONDER_SCRIPT],
      env: { PORT: String(port), NAME: process.env.NODE_ID!, HOST: '0.0.0.0' },
      health: { type: 'http', url: `http://127.0.0.1:${port}/` },
    },
  },
});
app.on('onActive', ({ epoch }) => {
  const at = now();
  // The backend's pid (its process group) is in the refreshed status: the bench kills it with this node.
  void platform.refreshedStatus().then((s) => {
    const status = s.apps.find((a) => a.name === 'web');
    process.send?.({ type: 'active', epoch, backendPid: status?.backend?.pid, at });
    setTimeout(() => process.send?.({ type: 'phases', epoch, phases: app.status().lastActivation }), 200);
  });
});
await platform.start();
process.send?.({ type: 'ready', at: now() });
process.on('SIGTERM', () => {
  void platform.close().then(
    () => process.exit(0),
    () => process.exit(3),
  );
});
