// Builds throwaway "hosts" for VIP tests: one network namespace per host, each with an eth0 that
// is a veth into a bridge living in its own namespace. Nothing is attached to the host's own
// network, so all test traffic (ARP, TCP) stays inside these namespaces.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** One simulated host. */
export interface TestHost {
  /** Network namespace name (for `ip -n` / `ip netns exec`). */
  netns: string;
  /** Interface inside the namespace. */
  iface: 'eth0';
  /** The host's own address on the test subnet. */
  address: string;
  /** MAC of eth0. */
  mac: string;
}

/** A bridge and its hosts; `close()` deletes every namespace (and with them the veths). */
export interface TestLan {
  hosts: TestHost[];
  subnet: string;
  close(): void;
}

const PREFIX = 'gcvip-';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why namespaces cannot be used here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'not root: creating network namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN';
  if (spawnSync('ip', ['-V']).status !== 0) return '`ip` (iproute2) is not installed';
  const probe = `${PREFIX}probe-${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `\`ip netns add\` failed: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** Why gratuitous ARP cannot be sent here, or undefined when arping is installed. */
export function arpingUnavailableReason(): string | undefined {
  const r = spawnSync('arping', ['--help'], { encoding: 'utf8' });
  if (r.error) return '`arping` is not installed (apt-get install -y arping)';
  return undefined;
}

function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Deletes namespaces that an earlier, crashed test process of this kind left behind. */
export function reapStaleNamespaces(): string[] {
  const reaped: string[] = [];
  for (const ns of listNetns()) {
    const m = /^gcvip-(\d+)-/.exec(ns);
    if (m && !alive(Number(m[1]))) {
      spawnSync('ip', ['netns', 'del', ns]);
      reaped.push(ns);
    }
  }
  return reaped;
}

const openLans = new Set<TestLan>();
process.once('exit', () => {
  for (const lan of openLans) lan.close();
});

/**
 * Creates `count` hosts on one bridge, addresses `10.250.<n>.1..count/24` (a test range that
 * exists only inside these namespaces).
 */
export function createLan(count: number, subnetIndex = 0): TestLan {
  reapStaleNamespaces();
  const tag = `${process.pid}-${randomBytes(2).toString('hex')}`;
  const bridgeNs = `${PREFIX}${tag}-br`;
  const created: string[] = [];
  const close = () => {
    for (const ns of created.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    created.length = 0;
    openLans.delete(lan);
  };
  const subnet = `10.250.${subnetIndex}`;
  const lan: TestLan = { hosts: [], subnet: `${subnet}.0/24`, close };
  openLans.add(lan);
  try {
    ip('netns', 'add', bridgeNs);
    created.push(bridgeNs);
    ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', bridgeNs, 'link', 'set', 'br0', 'up');
    for (let i = 1; i <= count; i++) {
      const netns = `${PREFIX}${tag}-h${i}`;
      ip('netns', 'add', netns);
      created.push(netns);
      // veth names are global in the root namespace until moved: keep them unique and short.
      const short = randomBytes(3).toString('hex');
      const inner = `gv${short}a`;
      const outer = `gv${short}b`;
      ip('link', 'add', inner, 'type', 'veth', 'peer', 'name', outer);
      ip('link', 'set', inner, 'netns', netns);
      ip('link', 'set', outer, 'netns', bridgeNs);
      ip('-n', bridgeNs, 'link', 'set', outer, 'master', 'br0');
      ip('-n', bridgeNs, 'link', 'set', outer, 'up');
      ip('-n', netns, 'link', 'set', inner, 'name', 'eth0');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      const address = `${subnet}.${i}`;
      ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      const info = JSON.parse(ip('-n', netns, '-j', 'link', 'show', 'dev', 'eth0')) as Array<{
        address: string;
      }>;
      lan.hosts.push({ netns, iface: 'eth0', address, mac: info[0]!.address });
    }
  } catch (err) {
    close();
    throw err;
  }
  return lan;
}

/** The IPv4 addresses on eth0 of `host`. */
export function addressesOf(host: TestHost): string[] {
  const info = JSON.parse(ip('-n', host.netns, '-j', 'addr', 'show', 'dev', host.iface)) as Array<{
    addr_info: Array<{ family: string; local: string }>;
  }>;
  return (info[0]?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local);
}

/** The neighbour (ARP) entry of `address` as seen from `host`: its MAC and states, or undefined. */
export function neighbourOf(host: TestHost, address: string): { mac: string; state: string[] } | undefined {
  const rows = JSON.parse(ip('-n', host.netns, '-j', 'neigh', 'show', address, 'dev', host.iface)) as Array<{
    lladdr?: string;
    state?: string[];
  }>;
  const row = rows[0];
  return row?.lladdr ? { mac: row.lladdr, state: row.state ?? [] } : undefined;
}

/**
 * Makes `host` talk to `address` over TCP from inside its namespace, so its kernel resolves the
 * address with ARP (a refused connection is enough). Returns what the connect attempt ended with.
 */
export function touch(host: TestHost, address: string, port = 9): string {
  const script = `const s=require('net').connect(${port},${JSON.stringify(address)});s.setTimeout(1500);s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',e=>console.log(e.code));s.on('timeout',()=>{console.log('timeout');s.destroy()})`;
  const r = spawnSync('ip', ['netns', 'exec', host.netns, process.execPath, '-e', script], {
    encoding: 'utf8',
    timeout: 5000,
  });
  return r.stdout.trim();
}

/** A Node program running inside a network namespace, with an IPC channel. */
export interface NetnsNode {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  messages<T = unknown>(): T[];
  output(): string;
  send(message: unknown): void;
  /** Waits for a message (also one already received) matching `predicate`, received after index `from`. */
  waitForMessage<T = unknown>(predicate: (m: T) => boolean, timeoutMs?: number, from?: number): Promise<T>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const liveNodes = new Set<ChildProcess>();
let exitHook = false;
/** At exit, nodes still running in namespaces are killed (registered with the first one). */
function killLiveNodesAtExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of liveNodes) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Runs `entry` (TypeScript, through tsx, reading workspace packages from source) as a process
 * inside `netns` (`ip netns exec` execs it, so the PID and the IPC channel are the program's own).
 */
export function spawnInNetns(netns: string, entry: string, env: Record<string, string> = {}): NetnsNode {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  killLiveNodesAtExit();
  const proc = spawn(
    'ip',
    ['netns', 'exec', netns, process.execPath, '--conditions=@gc/source', '--import', tsx, entry],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, ...env }, detached: true },
  );
  liveNodes.add(proc);
  const messages: unknown[] = [];
  const out: string[] = [];
  proc.on('message', (m) => messages.push(m));
  proc.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      liveNodes.delete(proc);
      resolve({ code, signal });
    }),
  );
  return {
    pid: proc.pid!,
    exited,
    messages: <T>() => messages as T[],
    output: () => out.join(''),
    send: (m) => proc.send(m as object),
    async waitForMessage<T>(predicate: (m: T) => boolean, timeoutMs = 15_000, from = 0) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const hit = (messages.slice(from) as T[]).find(predicate);
        if (hit) return hit;
        if (performance.now() > deadline || proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(
            `no matching message from the node in ${netns} within ${timeoutMs} ms; output:\n${out.join('').slice(-2000)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      process.kill(proc.pid!, signal);
      await exited;
    },
  };
}

/** Runs a short Node script inside `host`'s namespace and returns its trimmed stdout. */
export function runInNetns(host: TestHost, script: string, timeoutMs = 5000): string {
  const r = spawnSync('ip', ['netns', 'exec', host.netns, process.execPath, '-e', script], {
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return r.stdout.trim();
}

/** HTTP GET from inside `host`'s namespace; returns the body, or `error <code>`. */
export function httpGetFrom(host: TestHost, url: string): string {
  return runInNetns(
    host,
    `require('http').get(${JSON.stringify(url)},{agent:false,timeout:2000},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(b.trim()))}).on('error',e=>console.log('error '+e.code)).on('timeout',function(){console.log('error timeout');this.destroy()})`,
  );
}
