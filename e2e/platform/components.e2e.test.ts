// An app component written outside @gc/platform (examples/components: a lock file held while active) takes
// part in the active sequence like the built-in ones: its step runs in order, is undone when a later step
// fails, hands leadership on when it fails itself, and shows in the app's status and the node's health.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fastElection, makeTempDir, waitFor } from '@gc/testkit';
import { createPlatform, type App, type AppComponent, type Platform } from '@gc/platform';
import { lockFile } from '@gc/example-components';
import { useServer } from '../test/server.js';

const platforms: Platform[] = [];
const nats = useServer({ connect: false, closeFirst: () => Promise.all(platforms.map((p) => p.close())) });

const fast = fastElection();

async function node(id: string, lock: string, log: string[]): Promise<{ p: Platform; app: App }> {
  const p = await createPlatform({
    name: 'comp',
    nodeId: id,
    nats: { servers: nats.server.url },
    dataDir: await makeTempDir(`comp-${id}`),
  });
  platforms.push(p);
  const app = p.app('orders', { election: fast, components: [lockFile(lock)] });
  app.on(
    'onActive',
    ({ epoch }) => void log.push(`${id} active ${epoch} lock=${readFileSync(lock, 'utf8').trim()}`),
  );
  await p.start();
  return { p, app };
}

describe('a component from outside the platform', () => {
  it(
    'holds its resource while active, in sequence order, and a failing step hands leadership on',
    { timeout: 60_000 },
    async () => {
      const lock = join(await makeTempDir('comp-lock'), 'orders.lock');
      const log: string[] = [];
      const a = await node('a', lock, log);
      await a.app.waitForActive(10_000);
      expect(readFileSync(lock, 'utf8')).toBe(`a ${a.app.epoch()}\n`);
      expect(log).toEqual([`a active ${a.app.epoch()} lock=a ${a.app.epoch()}`]); // before onActive
      const st = (await a.p.refreshedStatus()).apps[0]!;
      expect(st.components?.['lock-file']).toMatchObject({ held: true, epoch: a.app.epoch() });
      expect(st.lastActivation).toHaveProperty('lock-file');
      expect(a.p.health.report().checks.map((c) => c.name)).toContain('lock-file-orders');

      // b starts while a leads; then a stray lock file (another holder) makes b's step fail: b undoes it,
      // hands leadership on, and a (cooled down) takes it back.
      const b = await node('b', lock, log);
      await a.app.stepDown();
      await waitFor(() => b.app.isActive(), { timeoutMs: 10_000, message: 'b active' });
      expect(readFileSync(lock, 'utf8')).toBe(`b ${b.app.epoch()}\n`);
      await b.app.stepDown();
      await waitFor(() => a.app.isActive(), { timeoutMs: 10_000, message: 'a active again' });
      await a.p.close(); // hands over to b
      await waitFor(() => b.app.isActive(), { timeoutMs: 10_000, message: 'b active after a left' });
      await b.app.stepDown();
      expect(existsSync(lock)).toBe(false); // released on the way down
      writeFileSync(lock, 'legacy-tool 1\n'); // now held by someone else; b, the only node, is elected again
      const failed = await waitFor(
        async () => (await b.p.audit.query({ app: 'orders', type: 'app.activate_failed' })).at(-1),
        { timeoutMs: 15_000, message: 'b refuses to activate over a lock held by another holder' },
      );
      expect(JSON.stringify(failed.data)).toMatch(/lock-file/);
      expect(b.app.isActive()).toBe(false);
      expect(readFileSync(lock, 'utf8')).toBe('legacy-tool 1\n'); // untouched

      // The fault persists: b retries with backoff (each wait twice the last), not several times a second, and
      // its status and health say why it cannot become active.
      const failures = await waitFor(
        async () => {
          const r = await b.p.audit.query({ app: 'orders', type: 'app.activate_failed' });
          return r.length >= 4 ? r : undefined;
        },
        { timeoutMs: 20_000, message: 'four activation attempts' },
      );
      const waits = failures.slice(-4).map((r) => (r.data as { retryInMs: number }).retryInMs);
      for (let i = 1; i < waits.length; i++) expect(waits[i]).toBe(waits[i - 1]! * 2);
      expect(failures.at(-1)!.severity).toBe('error');
      expect(b.app.status().activation).toMatchObject({
        failures: expect.any(Number),
        lastError: { error: expect.stringMatching(/lock-file/) },
      });
      await waitFor(
        () =>
          b.p.health.report().checks.find((c) => c.name === 'activation-orders' && c.state === 'unhealthy'),
        {
          timeoutMs: 5000,
          message: 'activation-orders red',
        },
      );
      // The operator removes the stray file: the next attempt succeeds and the screens turn green.
      rmSync(lock);
      await waitFor(() => b.app.isActive(), { timeoutMs: 20_000, message: 'b active once the lock is free' });
      expect(b.app.status().activation).toBeUndefined();
      await waitFor(
        () => b.p.health.report().checks.find((c) => c.name === 'activation-orders' && c.state === 'healthy'),
        {
          timeoutMs: 5000,
          message: 'activation-orders green again',
        },
      );
    },
  );
});

describe('a component whose deactivation hangs', () => {
  it(
    'does not keep the app down: after a TTL the leader stops renewing and a standby takes over',
    { timeout: 60_000 },
    async () => {
      let release: (() => void) | undefined;
      const hang: AppComponent = {
        name: 'stuck',
        activate: () => Promise.resolve(),
        // Hangs on the first deactivation (a service that will not stop) until the test lets it go.
        deactivate: () => (release ? Promise.resolve() : new Promise<void>((r) => (release = r))),
      };
      const mk = async (id: string) => {
        const p = await createPlatform({
          name: 'hang',
          nodeId: id,
          nats: { servers: nats.server.url },
          dataDir: await makeTempDir(`hang-${id}`),
          http: false,
        });
        platforms.push(p);
        const app = p.app('svc', { election: fast, components: id === 'a' ? [hang] : [] });
        await p.start();
        return { p, app };
      };
      const a = await mk('a');
      await a.app.waitForActive(10_000);
      const b = await mk('b');
      const t0 = performance.now();
      const stepping = a.app.stepDown();
      await waitFor(() => b.app.isActive(), {
        timeoutMs: 10_000,
        message: 'b takes over although a still deactivates',
      });
      const took = performance.now() - t0;
      // The bound (one TTL, 1.5 s) plus the lease running out (one TTL) plus promotion; not "until it unhangs".
      expect(took).toBeGreaterThan(1500);
      expect(took).toBeLessThan(6000);
      expect(b.app.epoch()).toBeGreaterThan(0);
      const slow = await waitFor(
        async () => (await a.p.audit.query({ app: 'svc', type: 'app.stepdown_slow' }))[0],
        {
          timeoutMs: 5000,
          message: 'app.stepdown_slow audited',
        },
      );
      expect(slow.severity).toBe('warn');
      release!();
      await stepping;
      expect(a.app.isActive()).toBe(false);
    },
  );
});
