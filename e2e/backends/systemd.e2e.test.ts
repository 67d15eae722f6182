import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import {
  BackendErrorCode,
  systemdBackend,
  systemdUnavailableReason,
  type Backend,
  type BackendEvent,
} from '@gc/backends';
import { freePort, waitFor, HTTP_SERVICE_FIXTURE } from '@gc/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// Real units under a real systemd. Runs only where systemd is PID 1 and we are root; elsewhere it
// is skipped with the reason (the error paths on such hosts are unit tests in @gc/backends).
const reason =
  systemdUnavailableReason() ??
  (process.getuid?.() !== 0
    ? 'not root: installing test units in /run/systemd/system needs root'
    : undefined);
if (reason) console.warn(`[systemd e2e] skipped: ${reason}`);

const service = HTTP_SERVICE_FIXTURE;
const units: string[] = [];
const backends: Backend[] = [];

function installUnit(body: string): string {
  const unit = `gc-test-${process.pid}-${randomBytes(3).toString('hex')}.service`;
  writeFileSync(
    `/run/systemd/system/${unit}`,
    `[Unit]\nDescription=gc e2e test unit\n\n[Service]\n${body}\n`,
  );
  units.push(unit);
  spawnSync('systemctl', ['daemon-reload']);
  return unit;
}

afterAll(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
  for (const u of units) {
    spawnSync('systemctl', ['stop', u]);
    rmSync(`/run/systemd/system/${u}`, { force: true });
  }
  if (units.length) spawnSync('systemctl', ['daemon-reload']);
});

describe.skipIf(!!reason)('systemd backend against a real systemd', () => {
  it('starts a Type=simple unit, waits for health, reads the journal, stops it', async () => {
    const port = await freePort();
    const unit = installUnit(
      `Type=simple\nEnvironment=PORT=${port}\nExecStart=${process.execPath} ${service}`,
    );
    const b = await systemdBackend.create(
      {
        unit,
        health: { type: 'http', url: `http://127.0.0.1:${port}/` },
        startTimeoutMs: 20_000,
        pollIntervalMs: 100,
      },
      { name: 'simple' },
    );
    backends.push(b);
    await b.start();
    const st = await b.status();
    expect(st.state).toBe('running');
    expect(st.pid).toBeGreaterThan(0);
    expect(st.detail).toMatchObject({ activeState: 'active', type: 'simple' });
    expect((await b.health()).healthy).toBe(true);
    await waitFor(async () => (await b.logs({ lines: 50 })).some((l) => l.startsWith('listening on')), {
      message: 'journal has the service output',
    });
    // systemctl restart: a new main process, active and healthy again.
    await b.restart!();
    const after = await b.status();
    expect(after.pid).toBeGreaterThan(0);
    expect(after.pid).not.toBe(st.pid);
    expect((await b.health()).healthy).toBe(true);
    await b.stop();
    expect((await b.status()).detail).toMatchObject({ activeState: 'inactive' });
  });

  it('waits for READY=1 of a Type=notify unit', async () => {
    const unit = installUnit(
      "Type=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep 600'",
    );
    const b = await systemdBackend.create(
      { unit, notify: true, startTimeoutMs: 20_000, pollIntervalMs: 100 },
      { name: 'notify' },
    );
    backends.push(b);
    const t0 = performance.now();
    await b.start();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(800);
    expect((await b.status()).detail).toMatchObject({ activeState: 'active', type: 'notify' });
    await b.stop();
  });

  it('escalates to SIGKILL when the unit does not stop in time', async () => {
    const unit = installUnit(
      `Type=simple\nEnvironment=IGNORE_TERM=1\nTimeoutStopSec=120\nExecStart=${process.execPath} ${service}`,
    );
    const events: BackendEvent[] = [];
    const b = await systemdBackend.create(
      { unit, stopTimeoutMs: 1000, pollIntervalMs: 100 },
      { name: 'stubborn', onEvent: (e) => events.push(e) },
    );
    backends.push(b);
    await b.start();
    await b.stop();
    expect((events.find((e) => e.type === 'stopped') as { escalated: boolean }).escalated).toBe(true);
  });

  it('reports a unit that does not exist', async () => {
    const b = await systemdBackend.create({ unit: `gc-no-such-unit-${process.pid}` });
    await expect(b.start()).rejects.toMatchObject({ code: BackendErrorCode.UnitNotFound });
  });
});
