import { spawnSync } from 'node:child_process';
import { dockerStatus } from '@gc/testkit';
import { describe, expect, it } from 'vitest';
import { dockerBackend } from './docker.js';
import { BackendErrorCode, ToolMissingError } from './errors.js';
import { systemdBackend, systemdUnavailableReason } from './systemd.js';

// Error paths of the systemd and docker backends, against the real tools (or their absence).
const emptyPath = { PATH: '/nonexistent-gc-test-path' };
const haveSystemctl = spawnSync('systemctl', ['--version']).status === 0;
const haveDocker = !spawnSync('docker', ['--version']).error;

describe('systemd backend error paths', () => {
  it('names systemctl and what to do when it is not installed', async () => {
    const b = await systemdBackend.create({ unit: 'convex-backend', env: emptyPath });
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolMissingError);
    expect((err as Error).message).toMatch(
      /`systemctl` command was not found on PATH: the systemd backend needs systemd/,
    );
    await expect(b.logs()).rejects.toThrow(/`journalctl` command was not found/);
  });

  it('says systemd is not PID 1 when systemctl exists on a host without systemd', async (ctx) => {
    const reason = systemdUnavailableReason();
    if (!haveSystemctl || !reason) {
      console.warn(
        `skipped: needs systemctl installed on a host without systemd as PID 1 (systemctl ${haveSystemctl ? 'present' : 'absent'}, systemd ${reason ? 'not PID 1' : 'is PID 1'})`,
      );
      ctx.skip();
    }
    const b = await systemdBackend.create({ unit: 'convex-backend' });
    const err = await b.start().catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe(BackendErrorCode.SystemdUnavailable);
    expect((err as Error).message).toMatch(
      /cannot control convex-backend.service: systemd is not the init system here \(PID 1 is ".*"/,
    );
    expect((err as Error).message).toMatch(/use the process or docker backend/);
    await expect(b.logs()).rejects.toMatchObject({ code: BackendErrorCode.SystemdUnavailable });
  });

  it('reports a unit that does not exist (needs systemd as PID 1)', async (ctx) => {
    const reason = systemdUnavailableReason();
    if (reason || !haveSystemctl) {
      console.warn(
        `skipped: a real unit lookup needs systemd as PID 1: ${reason ?? 'systemctl is not installed'}`,
      );
      ctx.skip();
    }
    const b = await systemdBackend.create({ unit: `gc-no-such-unit-${process.pid}` });
    const err = await b.start().catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe(BackendErrorCode.UnitNotFound);
    expect((err as Error).message).toMatch(/does not exist.*daemon-reload/);
  });

  it('refuses an empty unit name and odd characters', async () => {
    await expect(systemdBackend.create({})).rejects.toThrow(/needs options.unit/);
    await expect(systemdBackend.create({ unit: 'a;b' })).rejects.toThrow(/characters systemd does not allow/);
  });
});

describe('docker backend error paths', () => {
  it('names docker and what to do when the CLI is not installed', async () => {
    const b = await dockerBackend.create({ image: 'nginx:1.27', cliEnv: emptyPath }, { name: 'web' });
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolMissingError);
    expect((err as Error).message).toMatch(
      /`docker` command was not found on PATH: install the Docker CLI and engine/,
    );
  });

  it('says no engine answers when the CLI is present but the engine is not', async (ctx) => {
    const engine = await dockerStatus();
    if (!haveDocker || engine.available) {
      console.warn(
        `skipped: needs the docker CLI without a running engine (CLI ${haveDocker ? 'present' : 'absent'}; ${engine.reason})`,
      );
      ctx.skip();
    }
    const b = await dockerBackend.create({ image: 'nginx:1.27' }, { name: 'web' });
    for (const op of [
      () => b.start(),
      () => b.health(),
      () => (b as unknown as { checkEngine(): Promise<string> }).checkEngine(),
    ]) {
      const err = await op().catch((e: unknown) => e);
      expect((err as { code: string }).code).toBe(BackendErrorCode.DockerUnavailable);
      expect((err as Error).message).toMatch(
        /no Docker engine answers .*Start it \(systemctl start docker\), point DOCKER_HOST at one/,
      );
    }
  });

  it('refuses a missing image and a bad restart policy', async () => {
    await expect(dockerBackend.create({}, { name: 'x' })).rejects.toThrow(/needs options.image/);
    await expect(dockerBackend.create({ image: 'x', restartPolicy: 'sometimes' })).rejects.toThrow(
      /restart policy/,
    );
  });
});
