import { z } from 'zod';

/**
 * The VIP options that can come from configuration (the `vip:` block of an active-passive app in
 * `gc.yaml`): the address, the interface, the prefix length, the network namespace, the label and the
 * gratuitous ARP settings. Types and ranges only, unknown keys refused; {@link createVip} checks the rest
 * when it builds the VIP (an IPv4 address, a prefix length of 1 to 32, a label that starts with the
 * interface name). The epoch source, the fence, the clock, the logger and the event listener are not
 * configuration and are not in it.
 *
 * @example
 * const vip = vipConfigSchema.parse({ address: '192.168.1.100', interface: 'eth0', arp: { count: 5 } });
 * platform.app('orders', { vip });
 */
export const vipConfigSchema = z
  .object({
    address: z.string().min(1),
    interface: z.string().min(1),
    prefixLength: z.number().int().min(1).max(128).optional(),
    netns: z.string().optional(),
    label: z.string().optional(),
    arp: z
      .object({
        enabled: z.boolean().optional(),
        mode: z.enum(['request', 'reply']).optional(),
        count: z.number().int().min(0).max(100).optional(),
        intervalMs: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** VIP options as configuration gives them: the output of {@link vipConfigSchema}. */
export type VipConfig = z.infer<typeof vipConfigSchema>;
