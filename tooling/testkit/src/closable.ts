import { sleep } from './wait.js';

/**
 * Checks the lifecycle contract of a gc resource (docs/conventions.md): `closed()` stays pending for
 * `pendingMs` while nobody closes it, has resolved by the time `close()` resolves, and a second `close()`
 * resolves too. Throws an Error saying which part failed.
 */
export async function assertClosesOnce(
  resource: { close(): Promise<void>; closed(): Promise<void> },
  pendingMs = 20,
): Promise<void> {
  let settled = false;
  void resource.closed().then(() => (settled = true));
  await sleep(pendingMs);
  if (settled) throw new Error(`closed() resolved within ${pendingMs} ms although close() was not called`);
  await resource.close();
  if (!settled) throw new Error('closed() had not resolved when close() did');
  await resource.close();
}
