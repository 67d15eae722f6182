// @gc/membership across processes: a SIGKILLed member is reported as left (expired) by the other members
// and by an observer within failAfterMs (3 × heartbeat) plus delivery; a SIGTERMed member leaves at once.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { connect } from '@gc/core';
import { createMembership, type MembershipEvent } from '@gc/membership';
import { serverFlavors, spawnNode, waitFor } from '@gc/testkit';
import { useServer } from '../test/server.js';

const fixture = fileURLToPath(new URL('./fixtures/member-node.ts', import.meta.url));
const flavors = serverFlavors('[platform-parts] skipping the 2.10.x membership run: no 2.10 binary');

interface Ev {
  type: string;
  event: string;
  node: string;
  reason: string | null;
}

describe.each(flavors)('membership across processes (nats-server %s)', (flavor) => {
  const nats = useServer({ connect: false, server: { flavor } });

  it('a SIGKILLed member is reported as left within failAfterMs; a SIGTERMed one at once', async () => {
    const heartbeatMs = 250;
    const failAfterMs = 3 * heartbeatMs; // the documented default
    const platform = 'pp-members';
    const nc = await connect({ servers: nats.server.url });
    const observer = await createMembership(nc, {
      platform,
      nodeId: 'observer',
      observeOnly: true,
      heartbeatMs,
    });
    const events: Array<MembershipEvent & { at: number }> = [];
    const w = await observer.watch();
    void (async () => {
      for await (const e of w) events.push({ ...e, at: performance.now() });
    })();
    const children = ['n1', 'n2', 'n3'].map((id) =>
      spawnNode(fixture, {
        env: {
          NATS_URL: nats.server.url,
          PLATFORM: platform,
          NODE_ID: id,
          HEARTBEAT_MS: String(heartbeatMs),
        },
        label: `member-${id}`,
      }),
    );
    await Promise.all(children.map((c) => c.waitForMessage<Ev>((m) => m.type === 'ready')));
    await waitFor(async () => (await observer.members()).length === 3);
    expect((await observer.members()).map((m) => [m.nodeId, m.apps, m.labels])).toEqual([
      ['n1', ['orders'], { role: 'e2e' }],
      ['n2', ['orders'], { role: 'e2e' }],
      ['n3', ['orders'], { role: 'e2e' }],
    ]);
    await children[0]!.waitForMessage<Ev>((m) => m.event === 'join' && m.node === 'n3');

    const killedAt = performance.now();
    await children[1]!.kill(); // SIGKILL: no goodbye
    const leave = await waitFor(() => events.find((e) => e.type === 'leave' && e.member.nodeId === 'n2'), {
      timeoutMs: failAfterMs + 5000,
    });
    const tookMs = leave.at - killedAt;
    console.log(
      `[membership e2e ${flavor}] SIGKILLed member reported as left after ${Math.round(tookMs)} ms (failAfterMs ${failAfterMs})`,
    );
    expect(leave).toMatchObject({ reason: 'expired' });
    // Not early: the observer counts failAfterMs from the last heartbeat it saw, which came at most one
    // heartbeat interval before the kill — or a little more when the loaded machine delays the member's
    // timer, hence a second interval of slack.
    expect(tookMs).toBeGreaterThanOrEqual(failAfterMs - 2 * heartbeatMs);
    expect(tookMs).toBeLessThanOrEqual(failAfterMs + 500);
    // The other member process sees it too.
    await children[0]!.waitForMessage<Ev>((m) => m.event === 'leave' && m.node === 'n2', failAfterMs + 2000);

    const stoppedAt = performance.now();
    await children[2]!.stop(); // SIGTERM: close() deletes the record
    const polite = await waitFor(() => events.find((e) => e.type === 'leave' && e.member.nodeId === 'n3'));
    expect(polite).toMatchObject({ reason: 'left' });
    expect(polite.at - stoppedAt).toBeLessThan(failAfterMs);
    expect((await observer.members()).map((m) => m.nodeId)).toEqual(['n1']);

    w.stop();
    await children[0]!.stop();
    await observer.close();
    await nc.close();
  });
});
