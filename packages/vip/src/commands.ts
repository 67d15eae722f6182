import { isIP } from 'node:net';
import { VipError, VipErrorCode } from './errors.js';

/**
 * Pure builders of the `ip` and `arping` command lines and parsers of their output. Kept free of
 * I/O so that every flag is unit-tested; `vip.ts` runs them.
 */

/** Which arping implementation is installed: Debian's `arping` (Thomas Habets) or `iputils-arping`. */
export type ArpingFlavor = 'habets' | 'iputils';

/** Gratuitous ARP style: unsolicited ARP requests (most compatible) or unsolicited ARP replies. */
export type ArpMode = 'request' | 'reply';

/** An argv: the program and its arguments. */
export interface Argv {
  file: string;
  args: string[];
}

/** Where a command runs: the host's network namespace or a named one (`ip netns add NAME`). */
export interface NetnsTarget {
  /** Name of the network namespace, or undefined for the current one. */
  netns?: string | undefined;
}

/** Validates an IPv4 address and prefix length; throws {@link VipError} with what is wrong. */
export function validateAddress(address: string, prefixLength: number): void {
  if (isIP(address) !== 4) {
    throw new VipError(
      VipErrorCode.InvalidAddress,
      `VIP address ${JSON.stringify(address)} is not an IPv4 address (gratuitous ARP is IPv4 only); use for example 192.168.1.100`,
    );
  }
  if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > 32) {
    throw new VipError(
      VipErrorCode.InvalidAddress,
      `VIP prefix length ${prefixLength} is not an integer from 1 to 32 (use 32 for a single address, or the subnet's length)`,
    );
  }
}

function ipBase(ip: string, target: NetnsTarget): string[] {
  return target.netns ? ['-n', target.netns] : [];
}

/** `ip [-n NS] addr add ADDR/LEN dev IF [label L]`. */
export function ipAddrAddArgs(
  ip: string,
  target: NetnsTarget,
  address: string,
  prefixLength: number,
  iface: string,
  label?: string,
): Argv {
  const args = [...ipBase(ip, target), 'addr', 'add', `${address}/${prefixLength}`, 'dev', iface];
  if (label) args.push('label', label);
  return { file: ip, args };
}

/** `ip [-n NS] addr del ADDR/LEN dev IF`. */
export function ipAddrDelArgs(
  ip: string,
  target: NetnsTarget,
  address: string,
  prefixLength: number,
  iface: string,
): Argv {
  return {
    file: ip,
    args: [...ipBase(ip, target), 'addr', 'del', `${address}/${prefixLength}`, 'dev', iface],
  };
}

/** `ip [-n NS] -j addr show dev IF` (JSON output, iproute2 4.14+). */
export function ipAddrShowArgs(ip: string, target: NetnsTarget, iface: string): Argv {
  return { file: ip, args: [...ipBase(ip, target), '-j', 'addr', 'show', 'dev', iface] };
}

/** Options of {@link arpingArgs}. */
export interface ArpingCall {
  flavor: ArpingFlavor;
  mode: ArpMode;
  iface: string;
  address: string;
  count: number;
  intervalMs: number;
}

/**
 * The gratuitous ARP command. Habets' arping: `-U` (unsolicited) with source and target both the
 * VIP, `-P` for replies. iputils: `-U` for requests, `-A` for replies. Inside a namespace the
 * command runs under `ip netns exec NS` (arping has no namespace flag of its own).
 */
export function arpingArgs(arping: string, ip: string, target: NetnsTarget, call: ArpingCall): Argv {
  const intervalS = String(Math.max(call.intervalMs, 1) / 1000);
  const count = String(Math.max(1, Math.floor(call.count)));
  const own =
    call.flavor === 'habets'
      ? [
          '-q',
          '-U',
          ...(call.mode === 'reply' ? ['-P'] : []),
          '-i',
          call.iface,
          '-S',
          call.address,
          '-c',
          count,
          '-W',
          intervalS,
          call.address,
        ]
      : [
          '-q',
          call.mode === 'reply' ? '-A' : '-U',
          '-I',
          call.iface,
          '-s',
          call.address,
          '-c',
          count,
          '-i',
          intervalS,
          call.address,
        ];
  if (target.netns) return { file: ip, args: ['netns', 'exec', target.netns, arping, ...own] };
  return { file: arping, args: own };
}

/**
 * Whether an arping run succeeded. Gratuitous ARP gets no replies, and Habets' arping exits 1
 * when nothing answered, so 0 and 1 count as sent unless stderr reports an error.
 */
export function arpingSucceeded(flavor: ArpingFlavor, exitCode: number | null, stderr: string): boolean {
  if (exitCode === 0) return true;
  if (flavor === 'habets' && exitCode === 1) return stderr.trim() === '';
  return false;
}

/** Tells the arping flavour from its `--help`/usage output. */
export function detectArpingFlavor(output: string): ArpingFlavor | undefined {
  if (/Habets/i.test(output)) return 'habets';
  if (/iputils|-I <device>|-I device/i.test(output)) return 'iputils';
  return undefined;
}

/** One address of an interface as `ip -j addr show` reports it. */
export interface InterfaceAddress {
  family: 'inet' | 'inet6';
  local: string;
  prefixLength: number;
  label?: string;
}

/** What {@link parseAddrShow} extracts: the interface, its MAC and its addresses. */
export interface InterfaceInfo {
  ifname: string;
  mac: string | undefined;
  up: boolean;
  addresses: InterfaceAddress[];
}

/** Parses `ip -j addr show dev IF`; throws on output that is not the expected JSON. */
export function parseAddrShow(json: string): InterfaceInfo | undefined {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new VipError(
      VipErrorCode.CommandFailed,
      `ip -j addr show printed output that is not JSON: ${json.slice(0, 200)}`,
      {
        cause: err,
      },
    );
  }
  if (!Array.isArray(data)) {
    throw new VipError(VipErrorCode.CommandFailed, `ip -j addr show printed JSON that is not an array`);
  }
  const first = data[0] as
    | {
        ifname?: string;
        address?: string;
        flags?: string[];
        addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; label?: string }>;
      }
    | undefined;
  if (!first) return undefined;
  const addresses: InterfaceAddress[] = [];
  for (const a of first.addr_info ?? []) {
    if ((a.family === 'inet' || a.family === 'inet6') && typeof a.local === 'string') {
      addresses.push({
        family: a.family,
        local: a.local,
        prefixLength: a.prefixlen ?? (a.family === 'inet' ? 32 : 128),
        ...(a.label ? { label: a.label } : {}),
      });
    }
  }
  return {
    ifname: first.ifname ?? '',
    mac: first.address,
    up: (first.flags ?? []).includes('UP'),
    addresses,
  };
}

/** True when `info` carries `address` (any prefix length). */
export function hasAddress(info: InterfaceInfo | undefined, address: string): boolean {
  return !!info?.addresses.some((a) => a.local === address);
}

/** The classes of `ip` failures that deserve their own error and advice. */
export type IpFailure = 'exists' | 'absent' | 'permission' | 'no-interface' | 'no-netns' | 'other';

/** Classifies an `ip` failure by its stderr. */
export function classifyIpError(stderr: string): IpFailure {
  if (/File exists|Address already assigned/i.test(stderr)) return 'exists';
  if (/Cannot assign requested address|Address not found/i.test(stderr)) return 'absent';
  if (/network namespace/i.test(stderr)) return 'no-netns';
  if (/Operation not permitted|Permission denied/i.test(stderr)) return 'permission';
  if (/Cannot find device|does not exist/i.test(stderr)) return 'no-interface';
  return 'other';
}
