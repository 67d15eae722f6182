import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything the testkit starts registers here, so that a failing test, a forgotten close() or the
 * worker exiting still leaves no process or temp dir behind.
 */
interface Tracked {
  close(): Promise<void>;
  /** Synchronous last resort for process exit: SIGKILL, rm -rf. */
  killSync(): void;
}

const live = new Set<Tracked>();
let exitHookInstalled = false;

/** Prefix of every temp dir and marker the testkit creates; `scripts/check-leftovers.mjs` looks for it. */
export const TESTKIT_PREFIX = 'gc-testkit-';

/**
 * Prefix for this test run: `gc-testkit-<run>-`, with the run id set by the vitest global setup
 * (`GC_TESTKIT_RUN`), so that reaping leftovers never touches another run's processes.
 */
export function runPrefix(): string {
  return `${TESTKIT_PREFIX}${process.env.GC_TESTKIT_RUN ?? 'adhoc'}-`;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const t of live) {
      try {
        t.killSync();
      } catch {
        // best effort at exit: nothing else can be done here
      }
    }
  });
}

/** Registers a resource; returns a function that unregisters it (call it from the resource's close). */
export function track(t: Tracked): () => void {
  installExitHook();
  live.add(t);
  return () => live.delete(t);
}

/** Closes everything still open, newest first. Runs after every test file (see `vitest-setup.ts`). */
export async function cleanupAll(): Promise<void> {
  const items = [...live].reverse();
  live.clear();
  const results = await Promise.allSettled(items.map((t) => t.close()));
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') {
      items[i]!.killSync();
    }
  }
}

/** Number of live tracked resources (for the testkit's own tests). */
export function liveResources(): number {
  return live.size;
}

/**
 * A fresh temp dir named with the testkit prefix. It is removed after the test file (with everything
 * else the testkit tracks) unless the caller removed it first.
 */
export async function makeTempDir(label: string): Promise<string> {
  const dir = await makeOwnedTempDir(label);
  const untrack = track({
    close: () => {
      untrack();
      removeDir(dir);
      return Promise.resolve();
    },
    killSync: () => removeDir(dir),
  });
  return dir;
}

/** Removes a dir tree, ignoring a missing one. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A fresh temp dir with the testkit prefix that its creator removes itself (servers do on close). */
export function makeOwnedTempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `${runPrefix()}${label}-`));
}
