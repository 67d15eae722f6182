import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir } from '@gc/testkit';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../apps/cli/bin/run.js', import.meta.url));

function gc(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** `gc dev --check` with no nodes: a nats-server on `port` in a fresh folder, checked, then stopped. */
async function devCheck(port: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await makeTempDir('gc-dev');
  const httpPort = String(await freePort());
  return gc([
    'dev',
    '--check',
    '--nodes',
    '0',
    '--port',
    String(port),
    '--http-port',
    httpPort,
    '--dir',
    dir,
  ]);
}

// Runs the built `gc` binary (scripts/setup.sh builds it), as a user would.
describe('gc CLI (built binary)', () => {
  it('gc version --json names gc, node and the nats-server', async () => {
    const r = await gc(['version', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.node).toBe(process.version);
    expect(out.natsServer).toMatch(/^2\.\d+\.\d+$/);
  });

  it('gc dev --check --nodes 0 starts a healthy nats-server >= 2.10 with JetStream and stops it', async () => {
    const r = await devCheck(await freePort());
    expect(r.stderr + r.stdout).toMatch(
      /nats-server 2\.(1\d|[2-9]\d)\.\d+ is healthy at nats:\/\/127\.0\.0\.1:\d+ \(JetStream on/,
    );
    expect(r.stdout).toMatch(/check passed/);
    expect(r.code).toBe(0);
  });

  it('gc dev refuses a taken port with a clear message and a non-zero exit code', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((res) => blocker.listen(port, '127.0.0.1', () => res()));
    try {
      const r = await devCheck(port);
      expect(r.code).not.toBe(0);
      expect(r.stderr.replace(/\s*›\s*/g, ' ')).toMatch(
        new RegExp(`port ${port} .* already taken.*--port`, 's'),
      );
    } finally {
      blocker.close();
    }
  });

  it('gc dev refuses a bad flag value', async () => {
    const r = await gc(['dev', '--port', 'abc']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/port/i);
  });
});
