import type { AppComponent, AuditSeverity, ComponentContext } from '@gc/core';
import { createRing, type Ring, type RingEvent } from '@gc/ring';
import type { HookRunner } from './hooks.js';
import type { AppRingOptions } from './types.js';

/** Which ring events are worth more than `info` in the audit trail. */
const severityOf: Partial<Record<RingEvent['type'], AuditSeverity>> = {
  'own-failed': 'warn',
  'release-failed': 'warn',
  'move-stuck': 'warn',
  'member-expired': 'warn',
  lost: 'warn',
  'lease-lost': 'error',
};

/** The ring events audited: the decisions and faults, not each partition's start/done (those are metrics). */
const audited = new Set<RingEvent['type']>([
  'joined',
  'own-failed',
  'release-failed',
  'lost',
  'lease-lost',
  'coordinator',
  'coordinator-lost',
  'rebalance',
  'move-stuck',
  'member-expired',
  'pin',
  'unpin',
]);

/** A ring-mode app's membership in its ring, as an app component. */
export interface RingComponent extends AppComponent {
  /** The ring once this node joined (after `start`). */
  readonly ring: Ring | undefined;
}

/**
 * The ring of a ring-mode app as a component: `start` joins the ring (the app's `onOwn` / `onRelease` hooks
 * run for each partition this node takes or hands off), `stop` leaves it politely (every partition is handed
 * off first), `status()` and `health()` read the ring's own state; ring events become audit records
 * (`ring.<type>`). A rebalance that only reports `balanced` is not audited (it runs every tick).
 */
export function ringComponent(o: AppRingOptions, hooks: HookRunner): RingComponent {
  let ring: Ring | undefined;
  let ctx: ComponentContext | undefined;
  // A failed hook fails the partition's step: `onOwn` is retried by the ring with backoff (the partition is
  // not served meanwhile), a failed `onRelease` is reported and the hand-off goes on.
  const check = (failures: Array<{ error: Error }>) => {
    if (failures.length) throw failures[0]!.error;
  };
  return {
    name: 'ring',
    get ring() {
      return ring;
    },
    async start(c) {
      ctx = c;
      const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
      ring = await createRing(c.nc, {
        ...given,
        platform: c.platform,
        app: c.app,
        nodeId: c.nodeId,
        clock: c.clock,
        logger: c.logger,
        ...(c.registry ? { registry: c.registry } : {}),
        onOwn: async (partition, { epoch, signal, from }) =>
          check(await hooks.run('onOwn', { app: c.app, nodeId: c.nodeId, partition, epoch, signal, from })),
        onRelease: async (partition, { epoch, signal, deadline, to }) =>
          check(
            await hooks.run('onRelease', {
              app: c.app,
              nodeId: c.nodeId,
              partition,
              epoch,
              signal,
              deadline,
              to,
            }),
          ),
        onEvent: (e) => {
          if (!audited.has(e.type)) return;
          if (e.type === 'rebalance' && e.reason === 'balanced') return;
          const { type, ...data } = e;
          const err = (data as { error?: unknown }).error;
          ctx?.audit(
            `ring.${type}`,
            err instanceof Error ? { ...data, error: err.message } : data,
            severityOf[type] ?? 'info',
          );
        },
      });
    },
    async stop() {
      const r = ring;
      ring = undefined;
      await r?.close();
    },
    status() {
      if (!ring) return undefined;
      const s = ring.status();
      return { ...s, partitions: ring.partitionCount };
    },
    health() {
      if (!ring) return 'not joined to the ring yet';
      const s = ring.status();
      if (!s.joined) return 'not a member of the ring: its lease was lost (rejoining)';
      return true;
    },
  };
}
