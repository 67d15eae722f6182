import { execFileSync } from 'node:child_process';
import { createFence, FencedError } from '@gc/core';
import {
  spawnNode,
  waitFor,
  type ChildNode,
  addressesOf,
  arpingUnavailableReason,
  createLan,
  neighbourOf,
  netnsUnavailableReason,
  touch,
  type TestHost,
  type TestLan,
} from '@gc/testkit';
import { createVip, NotLeaderError } from '@gc/vip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Three hosts (network namespaces) on one bridge. A and B take turns holding the VIP, C is a
// client whose ARP cache must follow the VIP. All addresses exist only inside the namespaces.
const skipReason = netnsUnavailableReason() ?? arpingUnavailableReason();
if (skipReason) console.warn(`[vip e2e] skipped: ${skipReason}`);

const holderEntry = new URL('./fixtures/vip-holder.ts', import.meta.url).pathname;

interface HolderMsg {
  type: string;
  mac?: string;
  durationMs?: number;
  message?: string;
  code?: string;
  was?: boolean;
}

async function startHolder(host: TestHost, vip: string, epoch: number): Promise<ChildNode> {
  const child = spawnNode(holderEntry, {
    env: { VIP_NETNS: host.netns, VIP_ADDRESS: vip, VIP_EPOCH: String(epoch) },
    label: `vip-holder-${host.netns}`,
  });
  await child.waitForMessage<HolderMsg>((m) => m.type === 'ready', 20_000, 'holder ready');
  return child;
}

async function acquire(child: ChildNode): Promise<HolderMsg> {
  const before = child.messages().length;
  child.send({ cmd: 'acquire' });
  return waitFor(
    () =>
      child
        .messages<HolderMsg>()
        .slice(before)
        .find((m) => m.type === 'acquired' || m.type === 'error'),
    { timeoutMs: 15_000, message: `acquire answer from ${child.label}` },
  );
}

describe.skipIf(!!skipReason)('VIP failover between network namespaces', () => {
  let lan: TestLan;
  let A: TestHost, B: TestHost, C: TestHost;
  beforeAll(() => {
    lan = createLan(3, 0);
    [A, B, C] = lan.hosts as [TestHost, TestHost, TestHost];
  });
  afterAll(() => lan?.close());

  it('moves the VIP from A to B on graceful failover; C follows the new MAC; A no longer has it', async () => {
    const vip = `${lan.subnet.split('.').slice(0, 3).join('.')}.100`;
    const holderA = await startHolder(A, vip, 1);
    const a = await acquire(holderA);
    expect(a.type, a.message).toBe('acquired');
    expect(a.mac).toBe(A.mac);
    expect(addressesOf(A)).toContain(vip);

    // C talks to the VIP: its kernel resolves it to A's MAC.
    expect(touch(C, vip)).toBe('ECONNREFUSED');
    expect(neighbourOf(C, vip)?.mac).toBe(A.mac);

    // Failover: A's holder is told to stop (SIGTERM -> close -> ip addr del), B acquires with a higher epoch.
    await holderA.kill('SIGTERM');
    expect((await holderA.exited).code).toBe(0);
    expect(addressesOf(A)).not.toContain(vip);

    const holderB = await startHolder(B, vip, 2);
    const b = await acquire(holderB);
    expect(b.type, b.message).toBe('acquired');
    expect(b.mac).toBe(B.mac);
    expect(addressesOf(B)).toContain(vip);
    // No traffic from C since: only B's gratuitous ARP can have changed C's entry.
    await waitFor(() => neighbourOf(C, vip)?.mac === B.mac, {
      timeoutMs: 5000,
      message: `C's neighbour entry for ${vip} to follow B's MAC ${B.mac} (now ${neighbourOf(C, vip)?.mac})`,
    });
    expect(addressesOf(A)).not.toContain(vip);
    // And C now really reaches B at the VIP.
    expect(touch(C, vip)).toBe('ECONNREFUSED');
    expect(neighbourOf(C, vip)?.mac).toBe(B.mac);

    await holderB.kill('SIGTERM');
    expect(addressesOf(B)).not.toContain(vip);
  });

  it('removes the address when the holder process exits normally without closing (exit hook)', async () => {
    const vip = `${lan.subnet.split('.').slice(0, 3).join('.')}.101`;
    const holder = await startHolder(A, vip, 1);
    expect((await acquire(holder)).type).toBe('acquired');
    expect(addressesOf(A)).toContain(vip);
    holder.send({ cmd: 'exit' });
    expect((await holder.exited).code).toBe(0);
    expect(addressesOf(A)).not.toContain(vip);
  });

  it('after kill -9 of the holder on A, B takes over and C follows; A clears the stale address on restart', async () => {
    const vip = `${lan.subnet.split('.').slice(0, 3).join('.')}.102`;
    const holderA = await startHolder(A, vip, 5);
    expect((await acquire(holderA)).type).toBe('acquired');
    expect(touch(C, vip)).toBe('ECONNREFUSED');
    expect(neighbourOf(C, vip)?.mac).toBe(A.mac);

    await holderA.kill('SIGKILL');
    // A crash cannot run any hook: the address is still on A (on a real failover A's machine is usually gone).
    expect(addressesOf(A)).toContain(vip);

    const holderB = await startHolder(B, vip, 6);
    expect((await acquire(holderB)).type).toBe('acquired');
    await waitFor(() => neighbourOf(C, vip)?.mac === B.mac, {
      timeoutMs: 5000,
      message: `C's neighbour entry for ${vip} to follow B after A was killed`,
    });
    expect(touch(C, vip)).toBe('ECONNREFUSED');
    expect(neighbourOf(C, vip)?.mac).toBe(B.mac);

    // A's node comes back as a standby and clears what its crashed predecessor left.
    const restartedA = await startHolder(A, vip, 6);
    restartedA.send({ cmd: 'clear-stale' });
    const cleared = await restartedA.waitForMessage<HolderMsg>(
      (m) => m.type === 'cleared',
      10_000,
      'cleared',
    );
    expect(cleared.was).toBe(true);
    expect(addressesOf(A)).not.toContain(vip);
    expect(addressesOf(B)).toContain(vip);

    await restartedA.kill('SIGTERM');
    await holderB.kill('SIGTERM');
    expect(addressesOf(B)).not.toContain(vip);
  });

  it('refuses a deposed epoch and a node without leadership, and notices an address removed behind its back', async () => {
    const vip = `${lan.subnet.split('.').slice(0, 3).join('.')}.103`;
    const fence = createFence();
    let epoch: number | undefined = 7;
    const lost: string[] = [];
    const v = createVip({
      address: vip,
      interface: 'eth0',
      netns: A.netns,
      fence,
      currentEpoch: () => epoch,
      verifyIntervalMs: 100,
      arp: { enabled: true, mode: 'reply', count: 1, intervalMs: 50, flavor: undefined },
      onEvent: (e) => {
        if (e.type === 'lost') lost.push(e.address);
      },
    });
    await v.acquire(7);
    expect(await v.verify()).toBe(true);
    await v.release('demoted');
    expect(addressesOf(A)).not.toContain(vip);

    epoch = undefined;
    await expect(v.acquire(7)).rejects.toBeInstanceOf(NotLeaderError);
    fence.observe(9);
    epoch = 8;
    await expect(v.acquire(8)).rejects.toBeInstanceOf(FencedError);
    expect(addressesOf(A)).not.toContain(vip);

    epoch = 9;
    await v.acquire(9);
    // An operator (or another tool) removes the address: the Vip reports it lost.
    execFileSync('ip', ['-n', A.netns, 'addr', 'del', `${vip}/32`, 'dev', 'eth0']);
    await waitFor(() => lost.length > 0, { timeoutMs: 5000, message: 'lost event' });
    expect(v.state).toBe('lost');
    await v.close();
    expect(v.state).toBe('closed');
  });
});
