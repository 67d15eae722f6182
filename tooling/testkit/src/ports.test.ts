import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, freePortBlock } from './ports.js';

const listen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

describe('ports', () => {
  it('freePortBlock gives consecutive free ports below the ephemeral range, never twice', async () => {
    const [ephLo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const base = await freePortBlock(8);
      expect(base + 8).toBeLessThanOrEqual(ephLo!);
      for (let p = base; p < base + 8; p++) {
        expect(seen.has(p), `port ${p} handed out twice`).toBe(false);
        seen.add(p);
        expect(await listen(p)).toBe(true);
      }
    }
    expect(seen.has(await freePort())).toBe(false);
  });

  it('freePortBlock refuses a bad count', async () => {
    await expect(freePortBlock(0)).rejects.toThrow(/count must be an integer/);
    await expect(freePortBlock(1.5)).rejects.toThrow(/count must be an integer/);
  });
});
