import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { freePort, makeTempDir, waitFor, HTTP_SERVICE_FIXTURE } from '@gc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendErrorCode, PortInUseError, ToolMissingError } from './errors.js';
import { processBackend, type ProcessBackendOptions } from './process.js';
import type { Backend, BackendEvent } from './types.js';

const service = HTTP_SERVICE_FIXTURE;
const open: Backend[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

async function make(o: Partial<ProcessBackendOptions>, events: BackendEvent[] = []): Promise<Backend> {
  const b = await processBackend.create(
    { command: process.execPath, args: [service], graceMs: 2000, ...o },
    { name: 'svc', onEvent: (e) => events.push(e) },
  );
  open.push(b);
  return b;
}

describe('process backend (real processes)', () => {
  it('starts, waits for HTTP health, keeps output in logs and a file, reports pid, stops', async () => {
    const port = await freePort();
    const dir = await makeTempDir('backends-proc');
    const logFile = join(dir, 'svc.log');
    const b = await make({
      env: { PORT: String(port) },
      logFile,
      health: { type: 'http', url: `http://127.0.0.1:${port}/` },
    });
    await b.start();
    const st = await b.status();
    expect(st.state).toBe('running');
    expect(st.pid).toBeGreaterThan(0);
    const h = await b.health();
    expect(h).toMatchObject({ healthy: true, detail: 'HTTP 200' });
    await waitFor(async () => (await b.logs()).some((l) => l.startsWith('listening on')), {
      message: 'listening line',
    });
    expect((await b.logs()).some((l) => l.includes('stderr line'))).toBe(true);
    await b.stop();
    expect((await b.status()).state).toBe('stopped');
    // The fixture exits 0 on SIGTERM; a clean stop without escalation.
    expect(await b.status()).toMatchObject({ exitCode: 0, signal: null });
    await b.close();
    expect(readFileSync(logFile, 'utf8')).toMatch(/listening on \d+/);
    expect((await b.health()).healthy).toBe(false);
  });

  it('refuses to start on a port another process holds, naming the port and what to do', async () => {
    const port = await freePort();
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      const b = await make({ env: { PORT: String(port) }, health: { type: 'tcp', port } });
      const err = await b.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as PortInUseError).code).toBe(BackendErrorCode.PortInUse);
      expect((err as PortInUseError).holderPid).toBe(process.pid);
      expect((err as Error).message).toMatch(
        new RegExp(
          `port ${port} on 127.0.0.1 .* already in use by pid ${process.pid}: stop whatever listens there`,
        ),
      );
      expect((await b.status()).pid).toBeUndefined();
    } finally {
      squatter.close();
    }
  });

  it('reports a command that does not exist with what to do', async () => {
    const b = await processBackend.create({ command: 'gc-no-such-program-xyz' }, { name: 'ghost' });
    open.push(b);
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolMissingError);
    expect((err as Error).message).toMatch(
      /`gc-no-such-program-xyz` command was not found on PATH: install it/,
    );
    expect((await b.status()).state).toBe('failed');
  });

  it('gives up after the restart limit when the service keeps failing at start, with its output', async () => {
    const events: BackendEvent[] = [];
    const port = await freePort();
    const b = await make(
      {
        env: { EXIT_CODE: '7' },
        health: { type: 'tcp', port },
        restart: {
          mode: 'on-failure',
          maxRestarts: 2,
          windowMs: 60_000,
          initialBackoffMs: 20,
          maxBackoffMs: 50,
          factor: 2,
        },
      },
      events,
    );
    const err = await b.start().catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe(BackendErrorCode.StartFailed);
    expect((err as Error).message).toMatch(
      /exited \(code 7, signal null\); restarted 2 times within 60000 ms \(limit 2\)/,
    );
    expect((err as Error).message).toMatch(/service \d+ starting/);
    expect(events.filter((e) => e.type === 'restarting')).toHaveLength(2);
    expect(events.some((e) => e.type === 'gave-up')).toBe(true);
    const st = await b.status();
    expect(st).toMatchObject({ state: 'failed', exitCode: 7, restarts: 2 });
  });

  it('refuses an empty command', async () => {
    await expect(processBackend.create({}, { name: 'x' })).rejects.toThrow(/needs options.command/);
  });
});
