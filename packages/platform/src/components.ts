import type { AppComponent, ComponentTransition } from '@gc/core';
import { createBackendFromConfig, type Backend, type BackendConfig } from '@gc/backends';
import { replicatedDatabase, type ReplicatedDatabase } from '@gc/wal';
import { vipComponent } from '@gc/vip';
import type { Clock, ConnectOptions, Logger } from '@gc/core';
import type { HookRunner } from './hooks.js';
import type { AppOptions } from './types.js';

/** Order of the built-in components in the active sequence (see `AppComponent.order`). */
export const ComponentOrder = { Database: 100, Vip: 200, Backend: 300, Default: 500, Hooks: 1000 } as const;

/** A component that is the app's backend: the coordinator starts it, waits healthy, watches and restarts it. */
export interface BackendComponent extends AppComponent {
  readonly backend: Backend;
  /** It runs on standbys too (`backendRuns: 'always'`): deactivation leaves it running. */
  readonly keepRunning: boolean;
}

/** True when `c` is a {@link BackendComponent}. */
export function isBackendComponent(c: AppComponent): c is BackendComponent {
  return typeof (c as Partial<BackendComponent>).backend === 'object';
}

/** The app's backend (a `Backend` or a config loaded with `@gc/backends`) as a component. */
export async function backendComponent(
  b: BackendConfig | Backend,
  o: { app: string; logger: Logger; clock: Clock; runs?: 'when-active' | 'always' },
): Promise<BackendComponent> {
  const backend = isBackend(b)
    ? b
    : await createBackendFromConfig(b, { name: o.app, logger: o.logger, clock: o.clock });
  let last: Record<string, unknown> | undefined;
  const always = o.runs === 'always';
  return {
    name: 'backend',
    order: ComponentOrder.Backend,
    backend,
    keepRunning: always,
    // Runs on every node: started with the app, so that a failover only has to find it healthy. A start that
    // fails here is not fatal (the status shows it; activation starts it again).
    ...(always
      ? {
          // On a standby nothing else watches it: a backend that should run here and does not is red.
          health: () =>
            last && (last.state === 'failed' || last.state === 'stopped')
              ? `the backend (${String(last.kind)}) is ${String(last.state)} on this node, though it runs on standbys too (backendRuns: always)`
              : true,
          start: async () => {
            await backend.start().catch((err: unknown) =>
              o.logger.warn('backend did not start on this standby; activation will start it', {
                app: o.app,
                err: String(err),
              }),
            );
          },
        }
      : {}),
    async refresh() {
      // The backend cannot say now: the status keeps the last answer (its health check reports failures).
      const st = await backend.status().catch(() => undefined);
      if (st) last = { kind: st.kind, state: st.state, pid: st.pid, restarts: st.restarts };
    },
    status: () => last,
    stop: () => backend.close(),
  };
}

/** The app's onActive / onPassive hooks as the last step of the active sequence. */
export function hooksComponent(
  hooks: HookRunner,
  o: { app: string; nodeId: string; reason: () => string },
): AppComponent {
  const arg = (t: ComponentTransition, reason: string) => ({
    app: o.app,
    nodeId: o.nodeId,
    epoch: t.epoch,
    signal: t.signal,
    reason,
  });
  return {
    name: 'onActive',
    order: ComponentOrder.Hooks,
    // Each hook has its own timeout; the step allows all of them.
    get timeoutMs() {
      return hooks.timeoutMs * (hooks.count('onActive') + hooks.count('onPassive') + 1);
    },
    async activate(t) {
      const failures = await hooks.run('onActive', arg(t, o.reason()));
      if (failures.length) {
        // Let the hooks clean up what they started before the earlier steps are undone.
        await hooks.run('onPassive', arg(t, 'onActive failed'));
        throw failures[0]!.error;
      }
    },
    async deactivate(t) {
      const failures = await hooks.run('onPassive', arg(t, t.reason ?? o.reason()));
      if (failures.length) throw failures[0]!.error;
    },
  };
}

/** The built-in components an app's options ask for, plus its own, in active-sequence order. */
export async function composeComponents(
  name: string,
  o: AppOptions,
  d: {
    connectOptions: Partial<ConnectOptions> | undefined;
    logger: Logger;
    clock: Clock;
  },
): Promise<{ components: AppComponent[]; database: ReplicatedDatabase | undefined }> {
  const out: AppComponent[] = [];
  let database: ReplicatedDatabase | undefined;
  if (o.sqlite) {
    const { worker, ...rest } = o.sqlite;
    database = replicatedDatabase({
      ...rest,
      ...(worker ? { worker: { connect: d.connectOptions ?? {} } } : {}),
    });
    out.push(withTimeout(database, o.phaseTimeouts?.promoteMs));
  }
  if (o.vip) out.push(withTimeout(vipComponent(o.vip), o.phaseTimeouts?.vipMs));
  if (o.backend)
    out.push(
      withTimeout(
        await backendComponent(o.backend, { app: name, ...d, runs: o.backendRuns ?? 'when-active' }),
        o.phaseTimeouts?.backendMs,
      ),
    );
  out.push(...(o.components ?? []));
  const names = new Set<string>();
  for (const c of out) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9-]*$/.test(c.name))
      throw new TypeError(
        `app ${name}: component name ${JSON.stringify(c.name)} must be letters, digits and "-"`,
      );
    if (names.has(c.name)) throw new TypeError(`app ${name}: two components named ${c.name}`);
    names.add(c.name);
  }
  return {
    components: out.sort((a, b) => (a.order ?? ComponentOrder.Default) - (b.order ?? ComponentOrder.Default)),
    database,
  };
}

/** Overrides a component's step timeout when the app's options give one (keeps the component's methods). */
function withTimeout<C extends AppComponent>(c: C, timeoutMs: number | undefined): C {
  if (timeoutMs === undefined) return c;
  Object.defineProperty(c, 'timeoutMs', { value: timeoutMs, configurable: true });
  return c;
}

function isBackend(x: unknown): x is Backend {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as Backend).start === 'function' &&
    typeof (x as Backend).health === 'function'
  );
}
