import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { BackendErrorCode, dockerBackend, PortInUseError, type Backend } from '@gc/backends';
import { dockerStatus, freePort, waitFor } from '@gc/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// A real container under a real Docker engine. Runs only where an engine answers and the test
// image is present or can be pulled; elsewhere it is skipped with the reason (the "no engine"
// and "no docker" errors are unit tests in @gc/backends).
const image = process.env.GC_TEST_DOCKER_IMAGE ?? 'nginx:alpine';
const engine = await dockerStatus();
let reason = engine.available ? undefined : engine.reason;
if (!reason) {
  const have = spawnSync('docker', ['image', 'inspect', image]).status === 0;
  if (!have && spawnSync('docker', ['pull', image], { timeout: 120_000 }).status !== 0) {
    reason = `image ${image} is not present and cannot be pulled (set GC_TEST_DOCKER_IMAGE to a local image serving HTTP on port 80)`;
  }
}
if (reason) console.warn(`[docker e2e] skipped: ${reason}`);

const backends: Backend[] = [];
afterAll(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
});

describe.skipIf(!!reason)('docker backend against a real engine', () => {
  it('runs a container with a published port, env and labels, health-checks it, stops and removes it', async () => {
    const port = await freePort();
    const b = await dockerBackend.create(
      {
        image,
        pull: 'never',
        ports: [{ hostPort: port, containerPort: 80, hostIp: '127.0.0.1' }],
        env: { GC_TEST: '1' },
        resources: { memoryBytes: 128 * 1024 * 1024, pidsLimit: 64 },
        health: { type: 'http', url: `http://127.0.0.1:${port}/` },
        graceMs: 2000,
        startTimeoutMs: 60_000,
      },
      { name: `e2e-${process.pid}` },
    );
    backends.push(b);
    await b.start();
    const st = await b.status();
    expect(st.state).toBe('running');
    expect(st.pid).toBeGreaterThan(0);
    expect(st.detail).toMatchObject({ status: 'running' });
    expect((await b.health()).healthy).toBe(true);
    await waitFor(async () => (await b.logs()).length > 0, { message: 'container logs' });
    await b.stop();
    expect((await b.status()).detail).toMatchObject({ status: 'absent' });
  });

  it('refuses a host port that is already taken', async () => {
    const port = await freePort();
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      const b = await dockerBackend.create(
        { image, pull: 'never', ports: [{ hostPort: port, containerPort: 80, hostIp: '127.0.0.1' }] },
        { name: `e2e-taken-${process.pid}` },
      );
      backends.push(b);
      await expect(b.start()).rejects.toBeInstanceOf(PortInUseError);
    } finally {
      squatter.close();
    }
  });

  it('says clearly when the image does not exist', async () => {
    const b = await dockerBackend.create(
      { image: 'gc-no-such-image-xyz:never', pull: 'never' },
      { name: `e2e-noimg-${process.pid}` },
    );
    backends.push(b);
    await expect(b.start()).rejects.toMatchObject({ code: BackendErrorCode.StartFailed });
  });
});
