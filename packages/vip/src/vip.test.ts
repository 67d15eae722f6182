import { spawnSync } from 'node:child_process';
import { createFence, FakeClock, FencedError } from '@gc/core';
import { describe, expect, it } from 'vitest';
import { NotLeaderError, VipError, VipErrorCode, VipToolMissingError } from './errors.js';
import type { VipEvent } from './types.js';
import { createVip } from './vip.js';

// These tests run the real tools (or fail to find them) but never change an address: every call
// here is refused before `ip addr add`, or only reads.
const emptyPath = { PATH: '/nonexistent-gc-test-path' };

describe('createVip input checks', () => {
  it('refuses a bad address, a missing interface and a label that does not match the interface', () => {
    expect(() => createVip({ address: '10.0.0', interface: 'eth0' })).toThrow(VipError);
    expect(() => createVip({ address: '10.0.0.1', interface: '' })).toThrow(/interface is required/);
    expect(() => createVip({ address: '10.0.0.1', interface: 'eth0', label: 'vip0' })).toThrow(
      /must start with the interface name/,
    );
  });
});

describe('leadership fencing', () => {
  it('refuses to acquire without a current leadership epoch, and with a stale epoch', async () => {
    const events: VipEvent[] = [];
    let current: number | undefined;
    const fence = createFence();
    fence.observe(5);
    const vip = createVip({
      address: '10.250.99.1',
      interface: 'gc-none0',
      currentEpoch: () => current,
      fence,
      env: emptyPath,
      onEvent: (e) => events.push(e),
    });
    await expect(vip.acquire(4)).rejects.toBeInstanceOf(NotLeaderError);
    await expect(vip.acquire(4)).rejects.toThrow(/holds no leadership epoch/);
    current = 3;
    await expect(vip.acquire(4)).rejects.toThrow(/current leadership epoch is 3/);
    current = 4;
    const err = await vip.acquire(4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect((err as FencedError).highest).toBe(5);
    expect(vip.state).toBe('released');
    expect(events.filter((e) => e.type === 'acquired')).toHaveLength(0);
    await expect(vip.acquire(0)).rejects.toThrow(RangeError);
    let closed = false;
    void vip.closed().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(false);
    await vip.close();
    expect(closed).toBe(true);
    await vip.close();
    expect(vip.state).toBe('closed');
  });
});

describe('missing tools', () => {
  it('names arping and how to install it, before touching the interface', async () => {
    const vip = createVip({ address: '10.250.99.1', interface: 'lo', env: emptyPath });
    const err = await vip.acquire(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VipToolMissingError);
    expect((err as VipToolMissingError).code).toBe(VipErrorCode.ToolMissing);
    expect((err as Error).message).toMatch(
      /`arping` command was not found.*apt-get install -y arping.*arp\.enabled=false/,
    );
    expect(vip.state).toBe('released');
    await vip.close();
  });

  it('names ip (iproute2) when it is missing', async () => {
    const vip = createVip({
      address: '10.250.99.1',
      interface: 'lo',
      env: emptyPath,
      arp: { enabled: false, mode: 'request', count: 1, intervalMs: 10, flavor: undefined },
    });
    const err = await vip.acquire(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VipToolMissingError);
    expect((err as Error).message).toMatch(/`ip` command was not found.*iproute2/);
    await expect(vip.checkTools()).rejects.toThrow(/`ip` command was not found/);
    await vip.close();
  });
});

describe('real ip, read only', () => {
  const haveIp = spawnSync('ip', ['-V']).status === 0;
  it('reports an interface that does not exist with advice', async (ctx) => {
    if (!haveIp) {
      console.warn('skipped: `ip` (iproute2) is not installed here');
      ctx.skip();
    }
    const vip = createVip({
      address: '10.250.99.1',
      interface: 'gc-nodev0',
      arp: { enabled: false, mode: 'request', count: 1, intervalMs: 10, flavor: undefined },
    });
    await expect(vip.verify()).rejects.toMatchObject({ code: VipErrorCode.NoInterface });
    await expect(vip.verify()).rejects.toThrow(/Check vip.interface/);
    await vip.close();
  });

  it('reports a network namespace that does not exist with advice', async (ctx) => {
    if (!haveIp) {
      console.warn('skipped: `ip` (iproute2) is not installed here');
      ctx.skip();
    }
    const vip = createVip({ address: '10.250.99.1', interface: 'eth0', netns: 'gc-no-such-ns' });
    await expect(vip.inspect()).rejects.toMatchObject({ code: VipErrorCode.NoNetns });
    await expect(vip.inspect()).rejects.toThrow(/ip netns add gc-no-such-ns/);
    await vip.close();
  });

  it('reads the loopback interface and does not find the VIP on it', async (ctx) => {
    if (!haveIp) {
      console.warn('skipped: `ip` (iproute2) is not installed here');
      ctx.skip();
    }
    const vip = createVip({ address: '10.250.99.1', interface: 'lo', clock: new FakeClock() });
    const info = await vip.inspect();
    expect(info.ifname).toBe('lo');
    expect(info.addresses.some((a) => a.local === '127.0.0.1')).toBe(true);
    expect(await vip.verify()).toBe(false);
    await vip.close();
  });
});
