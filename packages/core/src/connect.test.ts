import { findNatsServer, startServer } from '@gc/testkit';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.js';
import { ErrorCode, isGcError } from './errors.js';
import { compareVersions, parseVersion, requireFeature, supports, versionSupports } from './features.js';

describe('connect (real nats-server)', () => {
  it('connects to a JetStream server and reports its features', async () => {
    const server = await startServer();
    const nc = await connect({ servers: server.url, name: 'test' });
    expect(nc.info?.version).toBe(server.version);
    expect(supports(nc, 'per-key-ttl')).toBe(versionSupports(server.version, 'per-key-ttl'));
    await nc.close();
  });

  it('refuses a server without JetStream with a clear error', async () => {
    const server = await startServer({ jetstream: false });
    const err = await connect({ servers: server.url }).catch((e: unknown) => e);
    expect(isGcError(err, ErrorCode.JetStreamUnavailable)).toBe(true);
    expect((err as Error).message).toMatch(/JetStream is not enabled.*-js/);
    // ...unless JetStream is not required.
    const nc = await connect({ servers: server.url, requireJetStream: false });
    await nc.close();
  });

  it('refuses a server older than the minimum', async () => {
    const server = await startServer({ jetstream: false });
    const err = await connect({
      servers: server.url,
      minServerVersion: '99.0.0',
      requireJetStream: false,
    }).catch((e: unknown) => e);
    expect(isGcError(err, ErrorCode.ServerTooOld)).toBe(true);
    expect((err as Error).message).toMatch(/too old.*99\.0\.0/);
  });

  it('reports wrong credentials as an auth failure', async () => {
    const server = await startServer({
      jetstream: false,
      extraConfig: 'authorization { user: gc, password: right }',
    });
    const err = await connect({
      servers: server.url,
      credentials: { user: 'gc', pass: 'wrong' },
      requireJetStream: false,
      reconnectForever: false,
    }).catch((e: unknown) => e);
    expect(isGcError(err, ErrorCode.AuthFailed)).toBe(true);
    const ok = await connect({
      servers: server.url,
      credentials: { user: 'gc', pass: 'right' },
      requireJetStream: false,
    });
    await ok.close();
  });

  it('reports an unreachable server as a connect failure', async () => {
    const err = await connect({ servers: 'nats://127.0.0.1:1', timeoutMs: 500 }).catch((e: unknown) => e);
    expect(isGcError(err, ErrorCode.ConnectFailed)).toBe(true);
    expect((err as Error).message).toMatch(/is nats-server running/);
  });

  it('refuses conflicting credentials and an unreadable creds file', async () => {
    await expect(connect({ credentials: { token: 'a', user: 'b' } })).rejects.toThrow(/only one of/);
    await expect(connect({ credentials: { credsFile: '/nonexistent.creds' } })).rejects.toThrow(
      /cannot read the credentials file/,
    );
  });
});

const compat = findNatsServer('2.10');
describe.skipIf(!compat)(
  `nats-server 2.10.x compatibility (${compat ?? 'no 2.10 binary: run scripts/provision-nats.sh'})`,
  () => {
    it('connects to 2.10 with JetStream and reports no per-key TTL', async () => {
      const server = await startServer({ flavor: '2.10' });
      expect(server.version).toMatch(/^2\.10\./);
      const nc = await connect({ servers: server.url });
      expect(supports(nc, 'per-key-ttl')).toBe(false);
      expect(() => requireFeature(nc, 'per-key-ttl')).toThrow(/does not support per-key-ttl/);
      await nc.close();
    });
  },
);

describe('versions and features', () => {
  it('parses and compares versions', () => {
    expect(parseVersion('v2.11.0-beta.1')).toEqual({ major: 2, minor: 11, patch: 0 });
    expect(compareVersions('2.10.27', '2.11.0')).toBeLessThan(0);
    expect(compareVersions('2.15.1', '2.15.1')).toBe(0);
    expect(() => parseVersion('latest')).toThrow(/not a version/);
  });

  it('knows which server versions silently lack per-key TTL', () => {
    expect(versionSupports('2.9.10', 'per-key-ttl')).toBe(false);
    expect(versionSupports('2.10.27', 'per-key-ttl')).toBe(false);
    expect(versionSupports('2.11.0', 'per-key-ttl')).toBe(true);
  });

  it('requireFeature names the feature and the version needed', () => {
    const fake = { info: { version: '2.10.3' } } as never;
    expect(() => requireFeature(fake, 'per-key-ttl')).toThrow(
      /does not support per-key-ttl \(needs 2\.11\.0\)/,
    );
  });
});
