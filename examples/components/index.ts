// An app component written outside @gc/platform: while the app is active on this node it holds a lock
// file carrying the leadership epoch (something a legacy tool checks before it writes). It plugs into the
// active sequence after the backend and before onActive, is undone when a later step fails, and reports its
// state in the app's status and the node's health.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AppComponent, ComponentContext } from '@gc/platform';

export function lockFile(path: string): AppComponent {
  let ctx: ComponentContext | undefined;
  let held: number | undefined;
  let problem: string | undefined;
  return {
    name: 'lock-file',
    order: 400,
    timeoutMs: 5000,
    async start(c) {
      ctx = c;
      await mkdir(dirname(path), { recursive: true });
    },
    async activate({ epoch }) {
      // `wx`: fails when another holder's file is still there — never two holders at once. This node's own
      // file, left by a crash of an earlier run, is taken over (a higher epoch).
      const [holder] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
      if (holder === ctx!.nodeId) await rm(path, { force: true });
      await writeFile(path, `${ctx!.nodeId} ${epoch}\n`, { flag: 'wx' });
      held = epoch;
      ctx!.audit('lock-file.held', { path, epoch });
    },
    async deactivate() {
      if (held === undefined) return;
      const [node] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
      if (node === ctx!.nodeId) await rm(path, { force: true });
      else problem = `${path} was taken over by ${node ?? 'someone else'} while held`;
      held = undefined;
    },
    async stop() {
      if (held !== undefined) await rm(path, { force: true });
    },
    status: () => ({ path, held: held !== undefined, ...(held ? { epoch: held } : {}) }),
    health: () => problem ?? true,
  };
}
