import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { track } from './cleanup.js';
import { freePort } from './ports.js';

/** Options of {@link ChaosProxy.start}. */
export interface ChaosProxyOptions {
  /** Where connections are forwarded. */
  target: { host?: string; port: number };
  /** Port to listen on (127.0.0.1). Default: a free port. */
  port?: number;
  /**
   * Learn which nats-server opened a route connection (the server id in the first `CONNECT`/`INFO`
   * the connecting side sends), so that {@link ChaosProxy.cut} can cut links from one peer only.
   */
  sniffPeer?: boolean;
}

/** A connection through the proxy. `peer` is the connecting server's id when sniffed. */
export interface ProxiedLink {
  readonly id: number;
  peer: string | undefined;
}

/** Which links a fault applies to; default all. */
export type LinkFilter = (link: ProxiedLink) => boolean;

type Mode = { kind: 'cut' } | { kind: 'blackhole' };

interface Pipe extends ProxiedLink {
  client: Socket;
  upstream: Socket;
  sniffBuf: string;
}

const all: LinkFilter = () => true;

/**
 * A TCP proxy for fault injection, between a client and a server or on a cluster or leaf route.
 * - `cut()`: closes matching links and refuses new ones until healed (the peer sees a disconnect);
 * - `blackhole()`: keeps links open but silently drops every byte (the peer sees a stall);
 * - `delay(ms)`: forwards with added latency;
 * - `heal()`: back to normal.
 */
export class ChaosProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #sniff: boolean;
  readonly #pipes = new Set<Pipe>();
  #faults: Array<{ mode: Mode; filter: LinkFilter }> = [];
  #delayMs = 0;
  #seq = 0;
  #untrack: () => void;
  #closed = false;

  private constructor(server: Server, port: number, opts: ChaosProxyOptions) {
    this.#server = server;
    this.port = port;
    this.#target = { host: opts.target.host ?? '127.0.0.1', port: opts.target.port };
    this.#sniff = opts.sniffPeer ?? false;
    server.on('connection', (s) => this.#accept(s));
    this.#untrack = track({ close: () => this.close(), killSync: () => this.#destroyAll() });
  }

  /** Starts a proxy listening on 127.0.0.1. */
  static async start(opts: ChaosProxyOptions): Promise<ChaosProxy> {
    const port = opts.port ?? (await freePort());
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new ChaosProxy(server, port, opts);
  }

  /** `nats://127.0.0.1:<port>` (or another scheme). */
  url(scheme = 'nats'): string {
    return `${scheme}://127.0.0.1:${this.port}`;
  }

  /** Links currently open through the proxy. */
  links(): ProxiedLink[] {
    return [...this.#pipes].map((p) => ({ id: p.id, peer: p.peer }));
  }

  #modeFor(link: ProxiedLink): Mode | undefined {
    for (let i = this.#faults.length - 1; i >= 0; i--) {
      const f = this.#faults[i]!;
      if (f.filter(link)) return f.mode;
    }
    return undefined;
  }

  #accept(client: Socket): void {
    const pipe: Pipe = {
      id: ++this.#seq,
      peer: undefined,
      client,
      upstream: undefined as unknown as Socket,
      sniffBuf: '',
    };
    if (!this.#sniff && this.#modeFor(pipe)?.kind === 'cut') {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(this.#target.port, this.#target.host);
    pipe.upstream = upstream;
    this.#pipes.add(pipe);
    const drop = () => {
      this.#pipes.delete(pipe);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('data', (chunk) => {
      if (this.#sniff && pipe.peer === undefined) this.#sniffPeer(pipe, chunk);
      this.#forward(pipe, chunk, upstream);
    });
    upstream.on('data', (chunk) => this.#forward(pipe, chunk, client));
  }

  #sniffPeer(pipe: Pipe, chunk: Buffer): void {
    pipe.sniffBuf += chunk.toString('latin1');
    const m = /(?:INFO|CONNECT) (\{.*?\})\r\n/s.exec(pipe.sniffBuf);
    if (m) {
      try {
        const info = JSON.parse(m[1]!) as { name?: string; server_id?: string };
        pipe.peer = info.server_id ?? info.name ?? '?';
      } catch {
        pipe.peer = `unparsed:${m[1]!.slice(0, 80)}`;
      }
      pipe.sniffBuf = '';
      if (this.#modeFor(pipe)?.kind === 'cut') pipe.client.destroy();
    } else if (pipe.sniffBuf.length > 64 * 1024) {
      pipe.peer = '';
      pipe.sniffBuf = '';
    }
  }

  #forward(pipe: Pipe, chunk: Buffer, to: Socket): void {
    const mode = this.#modeFor(pipe);
    if (mode?.kind === 'cut') {
      pipe.client.destroy();
      pipe.upstream.destroy();
      return;
    }
    if (mode?.kind === 'blackhole') return;
    if (this.#delayMs > 0) {
      const copy = Buffer.from(chunk);
      setTimeout(() => {
        if (!to.destroyed) to.write(copy);
      }, this.#delayMs);
    } else if (!to.destroyed) {
      to.write(chunk);
    }
  }

  /** Closes matching links now and refuses new ones until {@link ChaosProxy.heal}. */
  cut(filter: LinkFilter = all): void {
    this.#faults.push({ mode: { kind: 'cut' }, filter });
    for (const p of [...this.#pipes]) {
      if (filter(p)) {
        p.client.destroy();
        p.upstream.destroy();
        this.#pipes.delete(p);
      }
    }
  }

  /** Keeps matching links open but drops every byte in both directions until healed. */
  blackhole(filter: LinkFilter = all): void {
    this.#faults.push({ mode: { kind: 'blackhole' }, filter });
  }

  /** Adds `ms` of latency to every forwarded chunk (0 removes it). */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Removes every fault and the delay. Links cut before stay closed; clients reconnect. */
  heal(): void {
    this.#faults = [];
    this.#delayMs = 0;
  }

  #destroyAll(): void {
    for (const p of this.#pipes) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.#pipes.clear();
  }

  /** Stops listening and closes every link. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#destroyAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#untrack();
  }
}
