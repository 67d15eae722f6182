// A node for the app-failover bench: an active-passive app whose process backend is an HTTP service.
import { createPlatform } from '@gc/platform';

const port = Number(process.env.SERVICE_PORT);
const platform = await createPlatform({
  name: process.env.PLATFORM!,
  nodeId: process.env.NODE_ID!,
  nats: { servers: process.env.NATS_URL! },
  dataDir: process.env.DATA_DIR!,
  http: false,
});
const ttlMs = Number(process.env.TTL_MS ?? 3000);
const app = platform.app('web', {
  election: { ttlMs, renewIntervalMs: ttlMs / 3, renewDeadlineMs: (ttlMs * 2) / 3, pollIntervalMs: 100 },
  backend: {
    type: 'process',
    options: {
      command: process.execPath,
      args: [process.env.SERVICE!],
      env: { PORT: String(port) },
      health: { type: 'http', url: `http://127.0.0.1:${port}/` },
      healthIntervalMs: 50,
      graceMs: 1000,
    },
  },
});
app.on(
  'onActive',
  ({ epoch }) =>
    void process.send?.({ type: 'active', epoch, t: performance.timeOrigin + performance.now() }),
);
await platform.start();
process.send?.({ type: 'ready' });
process.on('SIGTERM', () => void platform.close().then(() => process.exit(0)));
