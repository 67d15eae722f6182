import {
  createFence,
  assertEpoch,
  realClock,
  silentLogger,
  ClosedError,
  ClosableResource,
  type Epoch,
} from '@gc/core';
import {
  arpingArgs,
  arpingSucceeded,
  classifyIpError,
  detectArpingFlavor,
  hasAddress,
  ipAddrAddArgs,
  ipAddrDelArgs,
  ipAddrShowArgs,
  parseAddrShow,
  validateAddress,
  type Argv,
  type ArpingFlavor,
  type InterfaceInfo,
  type IpFailure,
} from './commands.js';
import { NotLeaderError, VipCommandError, VipError, VipErrorCode, VipToolMissingError } from './errors.js';
import { run, runSync, SpawnFailure, type ExecResult } from './exec.js';
import { heldAtExit, installExitHook } from './exit.js';
import { ARPING_HINT, IP_HINT, ipError } from './failures.js';
import { defaultVipOptions } from './options.js';
import {
  VipState,
  type AcquireResult,
  type Vip,
  type VipEvent,
  type VipOptions,
  type VipStateValue,
} from './types.js';

class VipImpl extends ClosableResource implements Vip {
  readonly address: string;
  readonly #o: VipOptions;
  readonly #fence;
  readonly #clock;
  readonly #log;
  #state: VipStateValue = VipState.Released;
  #epoch: Epoch | undefined;
  #flavor: ArpingFlavor | undefined;
  #verifyTimer: object | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #exitKey = {};

  constructor(o: VipOptions) {
    super();
    validateAddress(o.address, o.prefixLength);
    if (!o.interface)
      throw new VipError(VipErrorCode.NoInterface, 'VIP interface is required (for example eth0)');
    if (o.label && !o.label.startsWith(o.interface)) {
      throw new VipError(
        VipErrorCode.InvalidAddress,
        `VIP label ${JSON.stringify(o.label)} must start with the interface name ${JSON.stringify(o.interface)} (for example ${o.interface}:vip)`,
      );
    }
    this.address = o.address;
    this.#o = o;
    this.#fence = o.fence ?? createFence();
    this.#clock = o.clock ?? realClock;
    this.#log = (o.logger ?? silentLogger).child({
      vip: o.address,
      dev: o.interface,
      ...(o.netns ? { netns: o.netns } : {}),
    });
    this.#flavor = o.arp.flavor;
  }

  get state(): VipStateValue {
    return this.#state;
  }

  get epoch(): Epoch | undefined {
    return this.#epoch;
  }

  #emit(event: VipEvent): void {
    try {
      this.#o.onEvent?.(event);
    } catch (err) {
      this.#log.error('VIP event listener threw', { err });
    }
  }

  #setState(to: VipStateValue): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#log.info(`VIP ${from} -> ${to}`, { epoch: this.#epoch });
    this.#emit({ type: 'state', from, to, epoch: this.#epoch, at: this.#clock.wallNow() });
  }

  // One operation at a time: acquire, release, announce and verify never interleave.
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    // The chain only orders the steps; each caller gets its own step's result or error.
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #exec(argv: Argv, tool: 'ip' | 'arping'): Promise<ExecResult> {
    try {
      return await run(argv.file, argv.args, { timeoutMs: this.#o.commandTimeoutMs, env: this.#o.env });
    } catch (err) {
      if (err instanceof SpawnFailure && err.errno === 'ENOENT') {
        // Inside a namespace arping runs under `ip netns exec`, so ENOENT there means ip itself.
        const missing = argv.file === this.#o.commands.ip ? 'ip' : tool;
        throw new VipToolMissingError(
          missing === 'ip' ? this.#o.commands.ip : this.#o.commands.arping,
          missing === 'ip' ? IP_HINT : ARPING_HINT,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async inspect(): Promise<InterfaceInfo> {
    const argv = ipAddrShowArgs(this.#o.commands.ip, this.#o, this.#o.interface);
    const r = await this.#exec(argv, 'ip');
    if (r.exitCode !== 0) throw ipError(argv, r, `reading addresses of ${this.#o.interface}`, this.#o.netns);
    const info = parseAddrShow(r.stdout);
    if (!info) {
      throw new VipCommandError(
        VipErrorCode.NoInterface,
        `interface ${this.#o.interface} not found. Check vip.interface against \`ip link\``,
        { command: `${argv.file} ${argv.args.join(' ')}`, exitCode: r.exitCode, stderr: r.stderr.trim() },
      );
    }
    return info;
  }

  async #present(): Promise<boolean> {
    return hasAddress(await this.inspect(), this.address);
  }

  async checkTools(): Promise<void> {
    await this.inspect();
    if (this.#o.arp.enabled) await this.#arpingFlavor();
  }

  async #arpingFlavor(): Promise<ArpingFlavor> {
    if (this.#flavor) return this.#flavor;
    const arping = this.#o.commands.arping;
    const r = await this.#exec({ file: arping, args: ['--help'] }, 'arping');
    const flavor = detectArpingFlavor(r.stdout + r.stderr);
    if (!flavor) {
      throw new VipError(
        VipErrorCode.ToolMissing,
        `${arping} is neither Debian's arping (Habets) nor iputils arping, so gratuitous ARP flags are unknown; set arp.flavor or commands.arping`,
      );
    }
    this.#flavor = flavor;
    return flavor;
  }

  acquire(epoch: Epoch): Promise<AcquireResult> {
    return this.#serial(async () => {
      if (this.#state === VipState.Closed) throw new ClosedError(`VIP ${this.address}`);
      assertEpoch(epoch, 'VIP acquire epoch');
      if (this.#o.currentEpoch) {
        const current = this.#o.currentEpoch();
        if (current !== epoch) {
          throw new NotLeaderError(
            current === undefined
              ? `refusing to acquire VIP ${this.address} with epoch ${epoch}: this node holds no leadership epoch (acquire only after winning the election)`
              : `refusing to acquire VIP ${this.address} with epoch ${epoch}: the current leadership epoch is ${current}`,
          );
        }
      }
      this.#fence.check(epoch, `acquire of VIP ${this.address}`);
      const t0 = this.#clock.now();
      const previous = this.#state;
      const previousEpoch = this.#epoch;
      this.#epoch = epoch;
      this.#setState(VipState.Acquiring);
      try {
        // Fail before touching the interface when arping is missing: no half-done acquire.
        if (this.#o.arp.enabled) await this.#arpingFlavor();
        const argv = ipAddrAddArgs(
          this.#o.commands.ip,
          this.#o,
          this.address,
          this.#o.prefixLength,
          this.#o.interface,
          this.#o.label,
        );
        const alreadyPresent = !(await this.#ipChange(argv, 'exists', `adding ${this.address}`));
        this.#armExitHook();
        // The first announcement before the acquire returns (peers learn the new MAC now); the others, that
        // only make up for a lost packet, follow in the background instead of delaying the failover.
        if (this.#o.arp.enabled) await this.#announce(1);
        const info = await this.inspect();
        if (!hasAddress(info, this.address)) {
          throw new VipError(
            VipErrorCode.AddressLost,
            `VIP ${this.address} is not on ${this.#o.interface} right after adding it (something else removed it)`,
          );
        }
        this.#setState(VipState.Held);
        this.#scheduleVerify();
        if (this.#o.arp.enabled && this.#o.arp.count > 1) this.#announceRest(epoch);
        const durationMs = this.#clock.now() - t0;
        this.#emit({ type: 'acquired', address: this.address, epoch, durationMs, alreadyPresent });
        return { epoch, alreadyPresent, durationMs, mac: info.mac };
      } catch (err) {
        this.#emit({ type: 'error', operation: 'acquire', error: err as Error });
        // A failed re-acquire leaves a held address held (under its old epoch); otherwise nothing is held.
        const stillHeld = previous === VipState.Held;
        this.#epoch = stillHeld ? previousEpoch : undefined;
        this.#setState(stillHeld ? VipState.Held : VipState.Released);
        throw err;
      }
    });
  }

  #armExitHook(): void {
    if (!this.#o.releaseOnExit) return;
    installExitHook();
    const argv = this.#delArgv();
    heldAtExit.set(this.#exitKey, () => {
      runSync(argv.file, argv.args, { timeoutMs: this.#o.commandTimeoutMs, env: this.#o.env });
    });
  }

  /** The announcements after the first, `intervalMs` later, while the address is still held with `epoch`. */
  #announceRest(epoch: Epoch): void {
    const timer = this.#clock.setTimeout(() => {
      void this.#serial(async () => {
        if (this.#state !== VipState.Held || this.#epoch !== epoch) return;
        await this.#announce(this.#o.arp.count - 1).catch((err: unknown) =>
          this.#emit({ type: 'error', operation: 'announce', error: err as Error }),
        );
      });
    }, this.#o.arp.intervalMs);
    (timer as { unref?: () => void }).unref?.();
  }

  /**
   * Detects the tools the VIP needs (`arping`'s flavor) ahead of the first acquire, so that a failover does
   * not pay for it. Rejects when a tool is missing. Optional: acquire does it too.
   */
  prepare(): Promise<void> {
    return this.#serial(async () => {
      if (this.#o.arp.enabled) await this.#arpingFlavor();
    });
  }

  async #announce(count = this.#o.arp.count): Promise<void> {
    const flavor = await this.#arpingFlavor();
    const a = this.#o.arp;
    const argv = arpingArgs(this.#o.commands.arping, this.#o.commands.ip, this.#o, {
      flavor,
      mode: a.mode,
      iface: this.#o.interface,
      address: this.address,
      count,
      intervalMs: a.intervalMs,
    });
    const t0 = this.#clock.now();
    const r = await this.#exec(argv, 'arping');
    if (this.#o.netns && r.exitCode === 255 && /exec of .* failed/i.test(r.stderr)) {
      throw new VipToolMissingError(this.#o.commands.arping, ARPING_HINT);
    }
    if (!arpingSucceeded(flavor, r.exitCode, r.stderr)) {
      throw new VipCommandError(
        VipErrorCode.CommandFailed,
        `gratuitous ARP for ${this.address} on ${this.#o.interface} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
        { command: `${argv.file} ${argv.args.join(' ')}`, exitCode: r.exitCode, stderr: r.stderr.trim() },
      );
    }
    const durationMs = this.#clock.now() - t0;
    this.#emit({ type: 'announced', address: this.address, count, durationMs });
  }

  announce(): Promise<void> {
    return this.#serial(() => this.#announce());
  }

  verify(): Promise<boolean> {
    return this.#serial(() => this.#present());
  }

  #scheduleVerify(): void {
    this.#cancelVerify();
    if (this.#o.verifyIntervalMs <= 0) return;
    const timer = this.#clock.setTimeout(() => {
      void this.#serial(async () => {
        if (this.#state !== VipState.Held) return;
        try {
          if (!(await this.#present())) {
            this.#log.warn('VIP no longer on the interface');
            this.#setState(VipState.Lost);
            this.#emit({ type: 'lost', address: this.address, epoch: this.#epoch });
            return;
          }
        } catch (err) {
          this.#emit({ type: 'error', operation: 'verify', error: err as Error });
        }
        this.#scheduleVerify();
      });
    }, this.#o.verifyIntervalMs);
    (timer as { unref?: () => void }).unref?.();
    this.#verifyTimer = timer;
  }

  #cancelVerify(): void {
    if (this.#verifyTimer) this.#clock.clearTimeout(this.#verifyTimer);
    this.#verifyTimer = undefined;
  }

  /** `ip addr del` of the address. */
  #delArgv(): Argv {
    return ipAddrDelArgs(this.#o.commands.ip, this.#o, this.address, this.#o.prefixLength, this.#o.interface);
  }

  /**
   * Runs `argv`, an `ip addr add` or `del` of the address: true when it changed the interface, false
   * when it failed only because the interface already was that way (`unchanged`: `exists` for an add,
   * `absent` for a del). Any other failure throws the typed error of `what` it was doing.
   */
  async #ipChange(argv: Argv, unchanged: IpFailure, what: string): Promise<boolean> {
    const r = await this.#exec(argv, 'ip');
    if (r.exitCode === 0) return true;
    if (classifyIpError(r.stderr) !== unchanged) throw ipError(argv, r, what, this.#o.netns);
    return false;
  }

  async #delete(reason: string): Promise<boolean> {
    const t0 = this.#clock.now();
    const wasPresent = await this.#ipChange(this.#delArgv(), 'absent', `removing ${this.address}`);
    heldAtExit.delete(this.#exitKey);
    this.#emit({
      type: 'released',
      address: this.address,
      durationMs: this.#clock.now() - t0,
      wasPresent,
      reason,
    });
    return wasPresent;
  }

  release(reason = 'release'): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === VipState.Closed) return;
      await this.#releaseNow(reason);
    });
  }

  async #releaseNow(reason: string): Promise<void> {
    this.#cancelVerify();
    if (this.#state === VipState.Released) return;
    this.#setState(VipState.Releasing);
    try {
      await this.#delete(reason);
    } catch (err) {
      this.#emit({ type: 'error', operation: 'release', error: err as Error });
      this.#setState(VipState.Held);
      throw err;
    }
    this.#epoch = undefined;
    this.#setState(VipState.Released);
  }

  clearStale(): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#state === VipState.Held) return false;
      return this.#delete('clear-stale');
    });
  }

  protected closeResources(): Promise<void> {
    return this.#serial(async () => {
      try {
        await this.#releaseNow('close');
      } finally {
        this.#cancelVerify();
        heldAtExit.delete(this.#exitKey);
        this.#setState(VipState.Closed);
      }
    });
  }
}

/**
 * Creates a {@link Vip}: a virtual IP that follows the leadership. Nothing changes on the host
 * until {@link Vip.acquire}.
 *
 * @example
 * const vip = createVip({ address: '192.168.1.100', interface: 'eth0', currentEpoch: () => election.epoch });
 * await vip.acquire(election.epoch!); // ip addr add + gratuitous ARP + verify
 * await vip.release('demoted');
 */
export function createVip(options: Partial<VipOptions> & Pick<VipOptions, 'address' | 'interface'>): Vip {
  const d = defaultVipOptions();
  const merged: VipOptions = {
    ...d,
    ...options,
    arp: { ...d.arp, ...options.arp },
    commands: { ...d.commands, ...options.commands },
  };
  return new VipImpl(merged);
}
