import { describe, expect, expectTypeOf, it } from 'vitest';
import type { VipComponentOptions } from './component.js';
import { vipConfigSchema, type VipConfig } from './schema.js';

describe('vipConfigSchema', () => {
  it('accepts an address, an interface and ARP settings, and its output fits vipComponent', () => {
    const c = vipConfigSchema.parse({
      address: '10.0.0.10',
      interface: 'eth0',
      arp: { count: 3, mode: 'reply' },
    });
    expect(c).toEqual({ address: '10.0.0.10', interface: 'eth0', arp: { count: 3, mode: 'reply' } });
    expectTypeOf<VipConfig>().toExtend<VipComponentOptions>();
  });

  it('refuses a missing interface, unknown keys and values out of range', () => {
    for (const bad of [
      { address: '10.0.0.10' },
      { address: '10.0.0.10', interface: 'eth0', colour: 'red' },
      { address: '10.0.0.10', interface: 'eth0', arp: { count: 101 } },
      { address: '10.0.0.10', interface: 'eth0', arp: { mode: 'shout' } },
      { address: '10.0.0.10', interface: 'eth0', arp: { retries: 1 } },
      { address: '10.0.0.10', interface: 'eth0', prefixLength: 0 },
    ])
      expect(vipConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });
});
