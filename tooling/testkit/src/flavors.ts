import { findNatsServer, type ServerFlavor } from '@gc/nats-server';

/**
 * The nats-server flavors a suite runs on: `default`, and `2.10` too when the 2.10.x compatibility
 * binary is installed. Without it, prints `warning` (what is skipped, and how to get the binary).
 *
 * @example
 * describe.each(serverFlavors('[locks] skipping the nats-server 2.10.x runs: no 2.10 binary'))('locks (%s)', (flavor) => {});
 */
export function serverFlavors(warning: string): ServerFlavor[] {
  if (findNatsServer('2.10')) return ['default', '2.10'];
  console.warn(warning);
  return ['default'];
}
