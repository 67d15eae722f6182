// A node for the app-failover bench: an active-passive app whose process backend is an HTTP service.
import { electionFor, platformFromEnv, serviceBackend } from './_env-node.js';

const port = Number(process.env.SERVICE_PORT);
const platform = await platformFromEnv();
const ttlMs = Number(process.env.TTL_MS ?? 3000);
const app = platform.app('web', { election: electionFor(ttlMs), backend: serviceBackend(port) });
app.on(
  'onActive',
  ({ epoch }) => void process.send?.({ type: 'active', epoch, t: Number(process.hrtime.bigint()) / 1e6 }),
);
await platform.start();
process.send?.({ type: 'ready' });
process.on('SIGTERM', () => void platform.close().then(() => process.exit(0)));
