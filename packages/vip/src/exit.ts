// Addresses held by any Vip in this process, removed synchronously if the process exits normally.

/** Per holder (a `Vip`'s key object): the synchronous removal of its address. */
export const heldAtExit = new Map<object, () => void>();
let exitHookInstalled = false;

/** Installs (once per process) the `exit` handler that runs every removal in {@link heldAtExit}. */
export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const release of heldAtExit.values()) {
      try {
        release();
      } catch {
        // the process is exiting; there is nobody left to report to
      }
    }
  });
}
