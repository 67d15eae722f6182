import { processBackend, type Backend, type BackendEvent, type ProcessBackendOptions } from '@gc/backends';
import { freePort, spawnNode, waitFor, HTTP_SERVICE_FIXTURE } from '@gc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { livePidsInGroup, pidAlive } from './proc.js';

// Real processes, real signals: the service fixture is a small Node HTTP server started by the
// process backend in its own process group.
const service = HTTP_SERVICE_FIXTURE;
const open: Backend[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

async function make(o: Partial<ProcessBackendOptions>, events: BackendEvent[]): Promise<Backend> {
  const b = await processBackend.create(
    { command: process.execPath, args: [service], ...o },
    { name: 'svc', onEvent: (e) => events.push(e) },
  );
  open.push(b);
  return b;
}

/** Restarts on a failure, counted over a minute (each test sets the limit and the backoff). */
const ON_FAILURE = { mode: 'on-failure', windowMs: 60_000 } as const;

/** The pid of the service's grandchild (GRANDCHILD=1), once it says it ignores SIGTERM. */
async function readyGrandchild(b: Backend): Promise<number> {
  const line = await waitFor(async () => (await b.logs()).find((l) => l.startsWith('grandchild ')), {
    message: 'grandchild pid',
  });
  await waitFor(async () => (await b.logs()).includes('grandchild ready'), {
    message: 'grandchild ignores SIGTERM now',
  });
  return Number(line.split(' ')[1]);
}

async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return res.text();
}

describe('process backend with real processes', () => {
  it('restarts a crashing service within its policy (new pid, healthy again), then gives up past the limit', async () => {
    const port = await freePort();
    const events: BackendEvent[] = [];
    const b = await make(
      {
        env: { PORT: String(port), CRASH_AFTER_MS: '600' },
        health: { type: 'http', url: `http://127.0.0.1:${port}/` },
        restart: { ...ON_FAILURE, maxRestarts: 2, initialBackoffMs: 100, maxBackoffMs: 400, factor: 2 },
      },
      events,
    );
    await b.start();
    const pid1 = (await b.status()).pid!;
    expect(await get(port)).toBe(`ok ${pid1}\n`);

    // The service crashes (exit 3) after 600 ms; the backend restarts it after 100 ms.
    await waitFor(async () => (await b.status()).restarts === 1 && (await b.health()).healthy, {
      timeoutMs: 10_000,
      message: 'first restart healthy',
    });
    const pid2 = (await b.status()).pid!;
    expect(pid2).not.toBe(pid1);
    expect(pidAlive(pid1)).toBe(false);
    expect(await get(port)).toBe(`ok ${pid2}\n`);

    // Second crash restarts (backoff 200 ms); the third exceeds maxRestarts=2 and it gives up.
    await waitFor(async () => (await b.status()).state === 'failed', {
      timeoutMs: 15_000,
      message: 'gave up',
    });
    const exits = events.filter((e) => e.type === 'exited');
    expect(exits.length).toBe(3);
    expect(exits.every((e) => e.type === 'exited' && e.exitCode === 3)).toBe(true);
    expect(
      events.filter((e) => e.type === 'restarting').map((e) => (e as { delayMs: number }).delayMs),
    ).toEqual([100, 200]);
    const gaveUp = events.find((e) => e.type === 'gave-up') as { reason: string } | undefined;
    expect(gaveUp?.reason).toMatch(/restarted 2 times within 60000 ms \(limit 2\)/);
    const st = await b.status();
    expect(st).toMatchObject({ state: 'failed', exitCode: 3, restarts: 2, pid: undefined });
    expect((await b.health()).healthy).toBe(false);
  });

  it('stop escalates to SIGKILL for a service that ignores SIGTERM; nothing is left in its process group', async () => {
    const port = await freePort();
    const events: BackendEvent[] = [];
    const b = await make(
      {
        env: { PORT: String(port), IGNORE_TERM: '1', GRANDCHILD: '1' },
        graceMs: 700,
        health: { type: 'tcp', port },
      },
      events,
    );
    await b.start();
    const pgid = (await b.status()).pid!;
    const grandchild = await readyGrandchild(b);
    expect(livePidsInGroup(pgid).sort()).toEqual([pgid, grandchild].sort());

    const t0 = performance.now();
    await b.stop();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(5000);
    const stopped = events.find((e) => e.type === 'stopped') as { escalated: boolean } | undefined;
    expect(stopped?.escalated).toBe(true);
    expect((await b.logs()).some((l) => l === 'ignoring SIGTERM')).toBe(true);
    expect(await b.status()).toMatchObject({ state: 'stopped', signal: 'SIGKILL' });
    expect(livePidsInGroup(pgid)).toEqual([]);
    expect(pidAlive(grandchild)).toBe(false);
  });

  it('a service that exits on SIGTERM while its child ignores it: the child is killed after the grace period', async () => {
    const events: BackendEvent[] = [];
    const b = await make({ env: { GRANDCHILD: '1' }, graceMs: 500 }, events);
    await b.start();
    const pgid = (await b.status()).pid!;
    const grandchild = await readyGrandchild(b);
    await b.stop();
    expect((events.find((e) => e.type === 'stopped') as { escalated: boolean }).escalated).toBe(true);
    expect(await b.status()).toMatchObject({ exitCode: 0 });
    expect(pidAlive(grandchild)).toBe(false);
    expect(livePidsInGroup(pgid)).toEqual([]);
  });

  it("a crash takes the dead instance's children along before the restart (no orphans holding ports)", async () => {
    const port = await freePort();
    const events: BackendEvent[] = [];
    const b = await make(
      {
        env: { PORT: String(port), CRASH_AFTER_MS: '500', GRANDCHILD: '1' },
        health: { type: 'http', url: `http://127.0.0.1:${port}/` },
        restart: { ...ON_FAILURE, maxRestarts: 5, initialBackoffMs: 50, maxBackoffMs: 50, factor: 1 },
      },
      events,
    );
    await b.start();
    const pgid1 = (await b.status()).pid!;
    await waitFor(() => livePidsInGroup(pgid1).length === 2, { message: 'service and grandchild up' });
    await waitFor(() => events.some((e) => e.type === 'restarting'), { timeoutMs: 5000, message: 'crash' });
    await waitFor(() => livePidsInGroup(pgid1).length === 0, {
      timeoutMs: 2000,
      message: 'old group empty after the crash',
    });
    await b.stop();
  });

  it('when the Node process that runs the backend exits normally, the service group goes with it', async () => {
    const port = await freePort();
    const holder = spawnNode(new URL('./fixtures/backend-holder.ts', import.meta.url).pathname, {
      env: { PORT: String(port) },
    });
    const { pid } = await holder.waitForMessage<{ type: string; pid: number }>(
      (m) => m.type === 'running',
      20_000,
      'backend running',
    );
    await waitFor(() => livePidsInGroup(pid).length === 2, { message: 'service and grandchild up' });
    holder.send({ cmd: 'exit' });
    expect((await holder.exited).code).toBe(0);
    await waitFor(() => livePidsInGroup(pid).length === 0, {
      timeoutMs: 3000,
      message: 'service group gone with its parent',
    });
  });
});
