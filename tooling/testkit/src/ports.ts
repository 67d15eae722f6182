import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1. Ports already handed out in this process are not handed out again,
 * so a cluster can reserve several before starting any server.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free port found after 50 attempts');
}

/** The kernel's range for outgoing connections' local ports (Linux; the usual default elsewhere). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) return [lo!, hi!];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return [32768, 60999];
}

async function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive free TCP ports on 127.0.0.1, for a process that takes a block from a
 * base port (`gc dev`'s node and service ports). The block lies below the kernel's ephemeral range, so no
 * outgoing connection of a concurrent test can take one of its ports between this check and the listen
 * (`freePort()`'s ports are in that range: a port 100 above one is not safe). Each vitest worker (up to
 * 16) draws from its own slice, so two workers never get overlapping blocks; within a process, blocks and
 * `freePort()` ports are not handed out twice.
 */
export async function freePortBlock(count: number): Promise<number> {
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    throw new RangeError(`freePortBlock: count must be an integer 1..1000, got ${count}`);
  }
  const [ephLo, ephHi] = ephemeralRange();
  // Below the ephemeral range, or above it when the kernel's range starts too low to leave room.
  let lo = 10_000;
  let hi = Math.min(ephLo, 65_536) - count;
  if (hi - lo < 160 * count) [lo, hi] = [Math.max(10_000, ephHi + 1), 65_536 - count];
  if (hi - lo < 160 * count) {
    throw new Error(
      `freePortBlock: no room outside the ephemeral range ${ephLo}-${ephHi} for ${count} ports`,
    );
  }
  const slices = 16;
  const worker = Number(process.env.VITEST_POOL_ID ?? process.pid) % slices;
  const width = Math.floor((hi - lo) / slices);
  const sliceLo = lo + worker * width;
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = sliceLo + Math.floor(Math.random() * Math.max(1, width - count));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = !handedOut.has(p) && (await listenable(p));
    if (ok) {
      for (let p = base; p < base + count; p++) handedOut.add(p);
      return base;
    }
  }
  throw new Error(`freePortBlock: no ${count} consecutive free ports found after 100 attempts`);
}
