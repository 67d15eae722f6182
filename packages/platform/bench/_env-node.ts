// What the benches' node programs share: their platform, configured by the environment they are started
// with, and the HTTP test service as an app's process backend.
import { createPlatform, type Platform } from '@gc/platform';

/** A platform without an HTTP server: PLATFORM, NODE_ID and NATS_URL from the environment, data in `dataDir`. */
export function platformFromEnv(dataDir = process.env.DATA_DIR!): Promise<Platform> {
  return createPlatform({
    name: process.env.PLATFORM!,
    nodeId: process.env.NODE_ID!,
    nats: { servers: process.env.NATS_URL! },
    dataDir,
    http: false,
  });
}

/** Election timings of a `ttlMs` lease as the defaults derive them (renew every third, give up after two), polling every 100 ms. */
export function electionFor(ttlMs: number) {
  return { ttlMs, renewIntervalMs: ttlMs / 3, renewDeadlineMs: (ttlMs * 2) / 3, pollIntervalMs: 100 };
}

/** A process backend running the HTTP service at SERVICE on `port`: probed every 50 ms, 1 s of stop grace. */
export function serviceBackend(port: number) {
  return {
    type: 'process',
    options: {
      command: process.execPath,
      args: [process.env.SERVICE!],
      env: { PORT: String(port) },
      health: { type: 'http', url: `http://127.0.0.1:${port}/` },
      healthIntervalMs: 50,
      graceMs: 1000,
    },
  } as const;
}
