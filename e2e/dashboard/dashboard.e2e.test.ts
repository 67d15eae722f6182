import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, freePortBlock, makeTempDir, spawnNode, waitFor } from '@gc/testkit';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';

// A real browser (Debian's chromium, installed by scripts/test-deps.sh) against a real `gc dev`.
const CHROMIUM = process.env.GC_CHROMIUM ?? '/usr/bin/chromium';
const bin = fileURLToPath(new URL('../../apps/cli/bin/run.js', import.meta.url));
const artifacts = fileURLToPath(new URL('../../test-results/', import.meta.url));

function gc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe.skipIf(!existsSync(CHROMIUM))(
  `dashboard in a real browser (${existsSync(CHROMIUM) ? CHROMIUM : `${CHROMIUM} missing: run scripts/test-deps.sh as root`})`,
  () => {
    it('shows the leader, and after "gc dev kill" the new leader and the event, live', async () => {
      const dir = await makeTempDir('gc-dev-ui');
      const natsPort = await freePort();
      const httpBase = await freePortBlock(3);
      const dev = spawnNode(bin, {
        args: [
          'dev',
          '--port',
          String(natsPort),
          '--http-port',
          String(await freePort()),
          '--node-http-port',
          String(httpBase),
          '--dir',
          dir,
        ],
        label: 'gc-dev-ui',
      });
      const url = await waitFor(() => /dashboard: (http\S+)/.exec(dev.output())?.[1], {
        timeoutMs: 60_000,
        message: `gc dev dashboard URL\n${dev.output()}`,
      });
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        });
        const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        await page.goto(url);
        const leader = page.locator('.app[data-app="orders"] .leader');
        await waitFor(async () => /^node-[abc]$/.test((await leader.textContent()) ?? ''), {
          timeoutMs: 20_000,
          message: 'leader shown on the page',
        });
        const first = (await leader.textContent())!;
        await waitFor(async () => (await page.locator('#conn').textContent()) === 'live', {
          message: 'live stream connected',
        });

        const kill = await gc(['dev', 'kill', '--app', 'orders', '--port', String(natsPort), '--dir', dir]);
        expect(kill.code, kill.stderr).toBe(0);
        expect(kill.stdout).toContain(`killed ${first}`);

        await waitFor(
          async () => {
            const now = (await leader.textContent()) ?? '';
            return /^node-[abc]$/.test(now) && now !== first;
          },
          { timeoutMs: 20_000, message: 'a new leader on the page without reloading' },
        );
        const second = (await leader.textContent())!;
        await waitFor(
          async () =>
            (await page.locator('#events').textContent())?.includes(`leader of orders: ${first} → ${second}`),
          {
            timeoutMs: 10_000,
            message: 'the leader change in the timeline',
          },
        );
        // The timeline also carries the platform's audit records (from the {platform}_audit stream).
        await waitFor(
          async () =>
            (await page.locator('#events').textContent())?.includes(`orders: ${second} became active`),
          {
            timeoutMs: 10_000,
            message: 'the audited activation in the timeline',
          },
        );
        mkdirSync(artifacts, { recursive: true });
        await page.screenshot({ path: `${artifacts}dashboard.png`, fullPage: true });
        expect(existsSync(`${artifacts}dashboard.png`)).toBe(true);
      } finally {
        await browser?.close();
        const exit = await dev.stop(20_000);
        expect(exit.code).toBe(0);
      }
    });
  },
);
