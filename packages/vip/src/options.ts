// Defaults of the VIP options (`VipOptions`, `ArpOptions`).
import type { ArpOptions, VipOptions } from './types.js';

/** Defaults of {@link VipOptions} (`address` and `interface` have none and must be given). */
export function defaultVipOptions(): Omit<VipOptions, 'address' | 'interface'> {
  return {
    prefixLength: 32,
    netns: undefined,
    label: undefined,
    arp: defaultArpOptions(),
    currentEpoch: undefined,
    fence: undefined,
    verifyIntervalMs: 5000,
    commandTimeoutMs: 5000,
    commands: { ip: 'ip', arping: 'arping' },
    releaseOnExit: true,
    env: undefined,
    onEvent: undefined,
    logger: undefined,
    clock: undefined,
  };
}

/** Defaults of {@link ArpOptions}. */
export function defaultArpOptions(): ArpOptions {
  return { enabled: true, mode: 'request', count: 3, intervalMs: 200, flavor: undefined };
}
