import type { AppComponent, ComponentContext, ComponentTransition } from '@gc/core';
import { createVip } from './vip.js';
import type { ArpOptions, Vip, VipOptions } from './types.js';

/** Options of {@link vipComponent}: the `vip` block of an app. */
export type VipComponentOptions = Partial<Omit<VipOptions, 'arp' | 'currentEpoch' | 'clock' | 'logger'>> &
  Pick<VipOptions, 'address' | 'interface'> & { arp?: Partial<ArpOptions> };

/**
 * The virtual IP of an active-passive app as an app component (order 200: after the database, before the
 * backend): acquired with the leadership epoch on the way up — refused when this node no longer leads at
 * that moment — released on the way down and on shutdown. Audits `vip.*`.
 *
 * @example
 * platform.app('orders', { vip: { address: '192.168.1.100', interface: 'eth0' } }); // built by the platform
 */
export function vipComponent(options: VipComponentOptions): AppComponent & { readonly vip: Vip | undefined } {
  let vip: Vip | undefined;
  return {
    name: 'vip',
    order: 200,
    timeoutMs: 15_000,
    get vip() {
      return vip;
    },
    start(ctx: ComponentContext) {
      vip = createVip({
        ...(options as Parameters<typeof createVip>[0]),
        currentEpoch: () => ctx.leaderEpoch(),
        logger: ctx.logger,
        clock: ctx.clock,
        onEvent: (e) => ctx.audit(`vip.${e.type}`, { ...e }),
      });
      // Tool detection now rather than during the first failover; a missing tool is reported here and again,
      // as an error, by the acquire.
      return vip
        .prepare()
        .catch((err: unknown) =>
          ctx.logger.warn('the VIP cannot be acquired on this node', { err: String(err) }),
        );
    },
    async activate({ epoch }: ComponentTransition) {
      await vip!.acquire(epoch);
    },
    deactivate({ reason }: ComponentTransition) {
      return vip!.release(reason ?? 'deactivate');
    },
    async stop() {
      await vip?.close();
    },
    status: () => (vip ? { address: vip.address, held: vip.state === 'held' } : undefined),
  };
}
