import { existsSync } from 'node:fs';
import { request } from 'node:http';

/** Which runtime the tests start servers with: real processes (default) or testcontainers. */
export type TestkitRuntime = 'process' | 'containers';

/** The runtime chosen with `GC_TESTKIT_RUNTIME` (`process` unless it says `containers`). */
export function testkitRuntime(): TestkitRuntime {
  return process.env.GC_TESTKIT_RUNTIME === 'containers' ? 'containers' : 'process';
}

/** Whether a Docker engine answers, and if not, why. */
export interface DockerStatus {
  available: boolean;
  reason: string;
}

let cached: Promise<DockerStatus> | undefined;

/**
 * Asks the Docker engine for `/_ping` over its socket with a short timeout. Answers fast when there
 * is no engine (no socket), so container tests skip in milliseconds with the reason.
 */
export function dockerStatus(timeoutMs = 1500): Promise<DockerStatus> {
  cached ??= new Promise((resolve) => {
    const host = process.env.DOCKER_HOST;
    if (host && !host.startsWith('unix://')) {
      resolve({
        available: false,
        reason: `DOCKER_HOST=${host} is not a unix socket; only local engines are used by the testkit`,
      });
      return;
    }
    const socketPath = host ? host.slice('unix://'.length) : '/var/run/docker.sock';
    if (!existsSync(socketPath)) {
      resolve({
        available: false,
        reason: `no Docker engine: ${socketPath} does not exist (the docker CLI alone is not an engine)`,
      });
      return;
    }
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(
        res.statusCode === 200
          ? { available: true, reason: 'Docker engine answered /_ping' }
          : { available: false, reason: `Docker engine answered /_ping with HTTP ${res.statusCode}` },
      );
    });
    req.on('timeout', () => {
      req.destroy();
      resolve({
        available: false,
        reason: `Docker engine at ${socketPath} did not answer within ${timeoutMs} ms`,
      });
    });
    req.on('error', (err) =>
      resolve({ available: false, reason: `Docker engine at ${socketPath} unreachable: ${err.message}` }),
    );
    req.end();
  });
  return cached;
}

/** A nats-server in a container (testcontainers), for `GC_TESTKIT_RUNTIME=containers`. */
export interface ContainerServer {
  readonly url: string;
  /** Restarts the container (its JetStream store lives in the container and survives). */
  restart(): Promise<void>;
  /** Stops and removes the container. */
  close(): Promise<void>;
}

/**
 * Starts `nats:<tag>` with JetStream in a container. testcontainers is imported only here, so the
 * process runtime never loads it. Throws with the reason when no engine answers.
 */
export async function startContainerServer(opts: { image?: string } = {}): Promise<ContainerServer> {
  const status = await dockerStatus();
  if (!status.available) throw new Error(`cannot start a nats-server container: ${status.reason}`);
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(opts.image ?? 'nats:2.11-alpine')
    .withCommand(['-js', '-sd', '/data'])
    .withExposedPorts(4222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
  const url = () => `nats://${container.getHost()}:${container.getMappedPort(4222)}`;
  return {
    get url() {
      return url();
    },
    restart: () => container.restart(),
    close: async () => {
      await container.stop();
    },
  };
}
