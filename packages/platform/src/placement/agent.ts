// This node's side of placement: it declares its apps with placement (and its machine) in `decl.<node>`,
// follows the scheduler's decision and the other nodes' declarations, and tells each app where it stands:
// placed here or not, the preferred leader, and whether that leader's standby is ready for a hand-over.
import { cpus, loadavg, totalmem } from 'node:os';
import { statfsSync } from 'node:fs';
import { keepWatching, type Clock, type Logger } from '@gc/core';
import type { PlacementBucket } from './bucket.js';
import {
  PlacementKey,
  nodeDeclarationSchema,
  parseRecord,
  placementStateSchema,
  type DeclaredApp,
  type NodeDeclaration,
  type PlacementState,
} from './records.js';
import { decodeFenced } from '@gc/core';

/** Where one app stands on this node, as the last decision says. */
export interface PlacementView {
  /** This node runs the app (active-passive: contends for it; pool: is active). */
  placed: boolean;
  /** Active-passive: the node that should lead it. */
  leader?: string;
  /** Active-passive, on its leader: the preferred leader's standby is ready, so this node may hand over. */
  handoverReady: boolean;
  /** Why, in words: `placed (generation 4)`, `unsatisfiable: …`, `waiting for the scheduler`. */
  reason: string;
  /** Generation of the decision (0 before the first). */
  generation: number;
  /** No node may run the app now (see the reason). */
  unsatisfiable?: boolean;
  /** This node is being drained. */
  drainingHere?: boolean;
  /** This node's drain passed its deadline: its apps leave whatever their `onMigrationStart` hooks say. */
  forced?: boolean;
  /** Why no node may run the app (the scheduler's `unsatisfiable` entry for it), while it says so. */
  invalid?: { constraint: string; message: string };
}

/** An app with placement, as the agent sees it. */
export interface PlacedApp {
  readonly name: string;
  /** Its spec, as this node declares it. */
  spec(): DeclaredApp;
  /** Active here now (leader, or active pool instance). */
  activeHere(): boolean;
  /** Active-passive: a standby here could take over now. */
  readyHere(): boolean;
  /** Why its `onMigrationStart` hook keeps it here, while it refuses to leave (published as `refused`). */
  refusedHere(): string | undefined;
  /** Called with each new view. */
  applyPlacement(view: PlacementView): void;
}

/** The agent of {@link startPlacementAgent}. */
export interface PlacementAgent {
  /** The last decision seen. */
  state(): PlacementState | undefined;
  /** Where `app` stands on this node. */
  view(app: string): PlacementView;
  /** Publishes this node's declaration again (an app was added, changed role or readiness). */
  refresh(): void;
  close(): Promise<void>;
}

function inventory(dataDir: string): NodeDeclaration['inventory'] {
  let diskFreeBytes = 0;
  try {
    const s = statfsSync(dataDir);
    diskFreeBytes = s.bavail * s.bsize;
  } catch {
    // No such folder yet or a file system without statfs: unknown free space counts as none.
  }
  return {
    cpus: cpus().length || 1,
    memoryBytes: totalmem(),
    diskFreeBytes,
    load1: Math.max(0, loadavg()[0] ?? 0),
  };
}

/** Starts this node's placement agent over `bucket` for the apps `apps()` returns. */
export async function startPlacementAgent(o: {
  bucket: PlacementBucket;
  nodeId: string;
  dataDir: string;
  clock: Clock;
  logger: Logger;
  apps: () => PlacedApp[];
  /** How often the declaration is written again when something in it changed. Default 250 ms. */
  refreshMs?: number;
}): Promise<PlacementAgent> {
  const { bucket, nodeId } = o;
  let state: PlacementState | undefined;
  const decls = new Map<string, NodeDeclaration>();
  let lastWritten = '';
  let redeclaredAt = Number.NEGATIVE_INFINITY;
  let closed = false;
  let writing: Promise<void> | undefined;
  let pending = false;

  // The machine's figures, read at most every 30 s (statfs can block on a hung mount: not every tick).
  let machine = inventory(o.dataDir);
  let machineAt = o.clock.now();
  const declaration = (): NodeDeclaration => {
    const apps = o.apps();
    if (o.clock.now() - machineAt >= 30_000) {
      machine = inventory(o.dataDir);
      machineAt = o.clock.now();
    }
    const refused = apps.flatMap((a) => {
      const why = a.refusedHere();
      return why === undefined ? [] : [[a.name, why] as const];
    });
    return {
      nodeId,
      apps: Object.fromEntries(apps.map((a) => [a.name, a.spec()])),
      inventory: machine,
      active: apps
        .filter((a) => a.activeHere())
        .map((a) => a.name)
        .sort(),
      ready: apps
        .filter((a) => a.readyHere())
        .map((a) => a.name)
        .sort(),
      ...(refused.length ? { refused: Object.fromEntries(refused) } : {}),
      at: Date.now(),
    };
  };
  // What decides whether it is worth writing: everything but the time and the load, which move all the time.
  const essence = (d: NodeDeclaration) =>
    JSON.stringify([d.apps, d.active, d.ready, d.refused ?? {}, d.inventory?.cpus]);

  const write = async (force: boolean): Promise<void> => {
    const d = declaration();
    const e = essence(d);
    if (!force && e === lastWritten) return;
    await bucket.kv.put(PlacementKey.decl(nodeId), JSON.stringify(d));
    lastWritten = e;
  };
  const refresh = (force = false): void => {
    if (closed) return;
    if (writing) {
      pending = true;
      return;
    }
    writing = write(force)
      .catch((err: unknown) => o.logger.warn('placement: declaration not written; retrying', { err }))
      .finally(() => {
        writing = undefined;
        if (pending) {
          pending = false;
          refresh();
        }
      });
  };

  const view = (app: string): PlacementView => {
    const generation = state?.generation ?? 0;
    if (!state)
      return { placed: false, handoverReady: false, reason: 'waiting for the scheduler', generation };
    const p = state.placements[app];
    const unsat = state.unsatisfiable[app];
    const drainingHere = state.draining[nodeId] !== undefined;
    const forced = state.draining[nodeId]?.forced === true;
    const also = {
      ...(drainingHere ? { drainingHere } : {}),
      ...(forced ? { forced } : {}),
      ...(unsat ? { invalid: { constraint: unsat.constraint, message: unsat.message } } : {}),
    };
    if (!p) {
      return {
        placed: false,
        handoverReady: false,
        reason: unsat ? `unsatisfiable: ${unsat.message}` : 'not placed yet (the scheduler has not seen it)',
        generation,
        ...(unsat ? { unsatisfiable: true } : {}),
        ...also,
      };
    }
    const placed = p.nodes.includes(nodeId);
    const leader = p.leader;
    // Hand over only on a decision made knowing this node leads: an older one (made before a step-down or a
    // failover gave it the lead) would send the lead back and forth.
    const handoverReady =
      leader !== undefined &&
      leader !== nodeId &&
      state.leaders?.[app] === nodeId &&
      (decls.get(leader)?.ready ?? []).includes(app);
    const why = state.reasons[app]?.[nodeId];
    const detail = why && 'detail' in why && typeof why.detail === 'string' ? `: ${why.detail}` : '';
    return {
      placed,
      ...(leader !== undefined ? { leader } : {}),
      handoverReady,
      reason: `${placed ? 'placed here' : `not placed here${detail}`} (generation ${generation})`,
      generation,
      ...also,
    };
  };
  const apply = () => {
    for (const a of o.apps()) a.applyPlacement(view(a.name));
  };

  const observe = (e: { key: string; operation: string; value: Uint8Array }) => {
    if (e.key === PlacementKey.state) {
      if (e.operation !== 'PUT') return;
      const s = parseRecord<PlacementState>(placementStateSchema, decodeFenced(e.value).value);
      if (!s) return void o.logger.warn('placement: a decision that does not parse was skipped');
      if (state && s.generation < state.generation && s.epoch <= state.epoch) return;
      state = s;
    } else if (e.key.startsWith('decl.')) {
      const node = e.key.slice('decl.'.length);
      const d =
        e.operation === 'PUT' ? parseRecord<NodeDeclaration>(nodeDeclarationSchema, e.value) : undefined;
      if (d) decls.set(node, d);
      else decls.delete(node);
      // Our own declaration removed (the scheduler took this node for gone while it was paused or cut off):
      // declare again at once rather than at the next change or the 30 s refresh.
      // (At most once a second: no write storm should a scheduler keep deleting it.)
      if (!d && node === nodeId && !closed) {
        lastWritten = '';
        if (o.clock.now() - redeclaredAt >= 1000) {
          redeclaredAt = o.clock.now();
          refresh(true);
        }
      }
    }
    apply();
  };
  await write(true);
  const stop = keepWatching(
    await bucket.kv.watch({ key: [PlacementKey.state, 'decl.>'] }),
    () => bucket.kv.watch({ key: [PlacementKey.state, 'decl.>'] }),
    observe,
    { clock: o.clock, logger: o.logger, what: 'placement watch', fields: { bucket: bucket.bucket } },
  );
  // Roles and readiness change without an event the agent sees: look again a few times a second, write
  // only when something changed (and at least every 30 s, so the load figures stay fresh).
  let ticks = 0;
  const refreshMs = o.refreshMs ?? 250;
  const every = Math.max(1, Math.round(30_000 / refreshMs));
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  const loop = () => {
    timer = o.clock.setTimeout(() => {
      ticks++;
      refresh(ticks % every === 0);
      // Apply the view again now and then: retries (a pool activation that failed), timers that did not fire.
      if (ticks % 4 === 0) apply();
      if (!closed) loop();
    }, refreshMs);
  };
  loop();
  return {
    state: () => state,
    view,
    refresh: () => refresh(),
    async close() {
      closed = true;
      if (timer !== undefined) o.clock.clearTimeout(timer);
      stop();
      await writing;
      // Leaving: the declaration goes, so the scheduler places this node's apps elsewhere at once.
      await bucket.kv.delete(PlacementKey.decl(nodeId)).catch((err: unknown) =>
        o.logger.warn('placement: declaration not removed; the scheduler drops it when membership does', {
          err,
        }),
      );
    },
  };
}
