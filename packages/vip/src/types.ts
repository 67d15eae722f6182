import type { Closable, Clock, Epoch, Fence, Logger } from '@gc/core';
import type { ArpMode, ArpingFlavor, InterfaceInfo } from './commands.js';

/** Gratuitous ARP settings of {@link VipOptions}. */
export interface ArpOptions {
  /** Announce the address with gratuitous ARP after adding it. Default `true`. */
  enabled: boolean;
  /** Unsolicited ARP requests (`request`, the most widely honoured) or replies (`reply`). Default `request`. */
  mode: ArpMode;
  /** How many announcements to send. Default `3`. */
  count: number;
  /** Pause between announcements, in ms. Default `200`. */
  intervalMs: number;
  /** Which arping is installed; detected from its usage text when `undefined`. Default `undefined`. */
  flavor: ArpingFlavor | undefined;
}

/** Options of {@link createVip}. */
export interface VipOptions {
  /** The virtual IPv4 address, for example `192.168.1.100`. Required. */
  address: string;
  /** Prefix length the address is added with. Default `32`. */
  prefixLength: number;
  /** Interface to put the address on, for example `eth0`. Required. */
  interface: string;
  /** Network namespace to act in (`ip -n NS`, `ip netns exec NS arping`); `undefined` for the current one. Default `undefined`. */
  netns: string | undefined;
  /** Address label (`ip addr add ... label eth0:vip`); must start with the interface name. Default `undefined`. */
  label: string | undefined;
  /** Gratuitous ARP settings. */
  arp: ArpOptions;
  /**
   * The current leadership epoch of this node, or `undefined` when it is not the leader. Acquire
   * is refused unless it returns exactly the epoch passed to {@link Vip.acquire}. Default: none
   * (only the fence is checked).
   */
  currentEpoch: (() => Epoch | undefined) | undefined;
  /** Fence that refuses an acquire with an epoch lower than one already seen. Default a new in-memory fence. */
  fence: Fence | undefined;
  /** Check every this many ms that the address is still on the interface while held; 0 turns it off. Default `5000`. */
  verifyIntervalMs: number;
  /** Time limit of one `ip`/`arping` call, in ms. Default `5000`. */
  commandTimeoutMs: number;
  /** Program names or paths. Default `{ ip: 'ip', arping: 'arping' }`. */
  commands: { ip: string; arping: string };
  /** Remove the address synchronously when the process exits normally while holding it. Default `true`. */
  releaseOnExit: boolean;
  /** Environment for the tools (PATH decides where they are found). Default `process.env`. */
  env: NodeJS.ProcessEnv | undefined;
  /** Receives every state change and announcement. Default none. */
  onEvent: ((event: VipEvent) => void) | undefined;
  /** Logger. Default silent. */
  logger: Logger | undefined;
  /** Clock for timings and the verify timer. Default the real clock. */
  clock: Clock | undefined;
}

/** Lifecycle of a {@link Vip}. */
export const VipState = {
  Released: 'released',
  Acquiring: 'acquiring',
  Held: 'held',
  Releasing: 'releasing',
  Lost: 'lost',
  Closed: 'closed',
} as const;
/** One of the states in {@link VipState}. */
export type VipStateValue = (typeof VipState)[keyof typeof VipState];

/** What a {@link Vip} reports through `onEvent`. */
export type VipEvent =
  | { type: 'state'; from: VipStateValue; to: VipStateValue; epoch: Epoch | undefined; at: number }
  | { type: 'acquired'; address: string; epoch: Epoch; durationMs: number; alreadyPresent: boolean }
  | { type: 'announced'; address: string; count: number; durationMs: number }
  | { type: 'released'; address: string; durationMs: number; wasPresent: boolean; reason: string }
  | { type: 'lost'; address: string; epoch: Epoch | undefined }
  | { type: 'error'; operation: string; error: Error };

/** Result of {@link Vip.acquire}. */
export interface AcquireResult {
  /** The epoch the address is held under. */
  epoch: Epoch;
  /** True when the address was already on the interface (acquire is idempotent). */
  alreadyPresent: boolean;
  /** Time from start of acquire to verified and announced, in ms. */
  durationMs: number;
  /** MAC address of the interface the neighbours now point at. */
  mac: string | undefined;
}

/** A virtual IP on one interface of this host, moved with the leadership. */
export interface Vip extends Closable {
  /** The address this Vip manages. */
  readonly address: string;
  /** Current state. */
  readonly state: VipStateValue;
  /** Epoch the address is held under, or undefined. */
  readonly epoch: Epoch | undefined;
  /**
   * Adds the address and announces it. Refused with `NotLeaderError` when the epoch provider
   * does not report `epoch`, and with `FencedError` when a higher epoch was already seen.
   */
  acquire(epoch: Epoch): Promise<AcquireResult>;
  /** Removes the address (a no-op when it is not there). `reason` is reported in the event. */
  release(reason?: string): Promise<void>;
  /** Sends the gratuitous ARP announcements again. */
  announce(): Promise<void>;
  /**
   * Detects the tools the VIP needs (`arping`'s flavor) ahead of the first acquire, so a failover does not
   * pay for it; rejects when one is missing. Optional.
   */
  prepare(): Promise<void>;
  /** True when the address is on the interface right now. */
  verify(): Promise<boolean>;
  /** The interface as `ip` reports it (MAC, addresses). */
  inspect(): Promise<InterfaceInfo>;
  /**
   * Removes the address even though this object never acquired it: a node calls this at start-up
   * to clear an address its crashed predecessor left behind. Returns whether it was there.
   */
  clearStale(): Promise<boolean>;
  /** Checks that `ip` (and `arping` when ARP is on) can be run; throws the typed error that acquire would. */
  checkTools(): Promise<void>;
  /** Releases the address if held and stops the verify timer. Idempotent. */
  close(): Promise<void>;
}
