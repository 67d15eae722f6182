import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  assertClosesOnce,
  ChaosProxy,
  dockerStatus,
  liveResources,
  spawnNode,
  startCluster,
  startHubLeaf,
  startServer,
  testkitRuntime,
  waitFor,
} from './index.js';
import { startContainerServer } from './containers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('single server', () => {
  it('starts, serves JetStream, restarts with its store after SIGKILL, and cleans up its dir', async () => {
    const server = await startServer();
    expect(server.version).toMatch(/^2\.(1\d|[2-9]\d)\./);
    const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const kv = await new Kvm(nc).create('tk_single', { history: 1 });
    await kv.put('k', 'v1');
    await server.kill();
    expect(server.running).toBe(false);
    await server.start();
    await waitFor(async () => dec.decode((await kv.get('k'))?.value ?? new Uint8Array()) === 'v1', {
      message: 'KV value back after the restart',
    });
    await nc.close();
    const dir = server.dir;
    await server.close();
    expect(existsSync(dir)).toBe(false);
  });
});

describe('3-node JetStream cluster', () => {
  it('keeps an R3 KV writable after one server is killed', async () => {
    const cluster = await startCluster();
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const kv = await new Kvm(nc).create('tk_r3', { replicas: 3 });
    // The create is answered once the stream has a leader, but the leader's interest in the KV's subjects
    // reaches the server this client uses over a route a moment later: a put before that gets "no
    // responders" (seen once in CI on Node 24).
    await waitFor(
      async () => {
        await kv.put('a', '1');
        return true;
      },
      { timeoutMs: 10_000, message: 'the first write to a new R3 KV' },
    );
    const victim = cluster.servers[0]!;
    await victim.kill();
    await waitFor(
      async () => {
        await kv.put('b', '2');
        return true;
      },
      { timeoutMs: 20_000, message: 'a write to the R3 KV with one server down' },
    );
    expect(dec.decode((await kv.get('a'))!.value)).toBe('1');
    expect(dec.decode((await kv.get('b'))!.value)).toBe('2');
    await nc.close();
    await cluster.close();
  });

  it('isolates one server through the route proxies and heals', async () => {
    const cluster = await startCluster({ routeProxies: true });
    const [a, b] = cluster.servers;
    // Every route link went through a proxy and was attributed to the server that opened it.
    await waitFor(
      () => {
        const links = cluster.routeProxies.flatMap((p) => p.links());
        return links.length >= 2 && links.every((l) => l.peer);
      },
      { message: 'route links attributed to their servers' },
    );
    const ncA = await connect({ servers: a!.url });
    const ncB = await connect({ servers: b!.url });
    ncB.subscribe('tk.ping', { callback: (_e, m) => void m.respond(m.data) });
    await ncB.flush();
    await waitFor(() => ncA.request('tk.ping', 'x', { timeout: 300 }), {
      message: 'request across routes before the cut',
    });
    await cluster.isolate(0);
    await waitFor(async () => (await a!.monitor<{ num_routes: number }>('routez')).num_routes === 0, {
      message: 'server 1 has no routes after isolation',
    });
    await expect(ncA.request('tk.ping', 'y', { timeout: 300 })).rejects.toThrow();
    // The other two servers stay routed to each other (their route may be re-forming right after
    // the cut; a route between them that never comes back fails here).
    await waitFor(async () => (await b!.monitor<{ num_routes: number }>('routez')).num_routes > 0, {
      timeoutMs: 10_000,
      message: 'server 2 keeps a route to server 3 while server 1 is isolated',
    });
    cluster.healRoutes();
    await waitFor(async () => (await a!.monitor<{ num_routes: number }>('routez')).num_routes > 0, {
      timeoutMs: 20_000,
      message: 'server 1 routes back after heal',
    });
    await waitFor(() => ncA.request('tk.ping', 'z', { timeout: 300 }), {
      message: 'request across routes after heal',
    });
    await ncA.close();
    await ncB.close();
    await cluster.close();
  });
});

describe('hub + leaf', () => {
  it('passes request/reply both ways and JetStream domains stay separate', async () => {
    const pair = await startHubLeaf();
    const hubNc = await connect({ servers: pair.hub.url });
    const leafNc = await connect({ servers: pair.leaf.url });
    hubNc.subscribe('svc.hub', {
      callback: (_e, m) => void m.respond(enc.encode(`hub:${dec.decode(m.data)}`)),
    });
    leafNc.subscribe('svc.leaf', {
      callback: (_e, m) => void m.respond(enc.encode(`leaf:${dec.decode(m.data)}`)),
    });
    await hubNc.flush();
    await leafNc.flush();
    const fromLeaf = await waitFor(
      async () => dec.decode((await leafNc.request('svc.hub', 'a', { timeout: 500 })).data),
      {
        message: 'leaf -> hub request',
      },
    );
    expect(fromLeaf).toBe('hub:a');
    const fromHub = await waitFor(
      async () => dec.decode((await hubNc.request('svc.leaf', 'b', { timeout: 500 })).data),
      {
        message: 'hub -> leaf request',
      },
    );
    expect(fromHub).toBe('leaf:b');
    const hubInfo = await (await jetstreamManager(hubNc)).getAccountInfo();
    const leafInfo = await (await jetstreamManager(leafNc)).getAccountInfo();
    expect(hubInfo.domain).toBe('hub');
    expect(leafInfo.domain).toBe('leaf');
    // Cutting the link partitions the zones; healing reconnects the leaf.
    pair.link!.cut();
    await pair.waitUnlinked();
    await expect(leafNc.request('svc.hub', 'c', { timeout: 300 })).rejects.toThrow();
    pair.link!.heal();
    await pair.waitLinked(20_000);
    await hubNc.close();
    await leafNc.close();
    await pair.close();
  });
});

describe('chaos proxy', () => {
  it('cut makes a client see a disconnect; heal lets it reconnect', async () => {
    const server = await startServer({ jetstream: false });
    const proxy = await ChaosProxy.start({ target: { port: server.port } });
    const nc = await connect({
      servers: proxy.url(),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
      pingInterval: 1000,
    });
    const seen: string[] = [];
    void (async () => {
      for await (const s of nc.status()) seen.push(s.type);
    })();
    await nc.flush();
    proxy.cut();
    await waitFor(() => seen.includes('disconnect'), { message: 'client sees the disconnect' });
    await expect(nc.flush()).rejects.toThrow();
    proxy.heal();
    await waitFor(() => seen.includes('reconnect'), {
      timeoutMs: 15_000,
      message: 'client reconnects after heal',
    });
    await nc.flush();
    await nc.close();
    await proxy.close();
    await server.close();
  });

  it('blackhole stalls a link without closing it, and delay adds latency', async () => {
    const server = await startServer({ jetstream: false });
    const proxy = await ChaosProxy.start({ target: { port: server.port } });
    const nc = await connect({ servers: proxy.url() });
    nc.subscribe('echo', { callback: (_e, m) => void m.respond(m.data) });
    await nc.flush();
    proxy.delay(150);
    const t0 = performance.now();
    await nc.request('echo', 'x', { timeout: 3000 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280); // two proxied hops each way
    proxy.delay(0);
    proxy.blackhole();
    await expect(nc.request('echo', 'y', { timeout: 500 })).rejects.toThrow();
    expect(proxy.links().length).toBe(1);
    await nc.close().catch(() => undefined);
    await proxy.close();
    await server.close();
  });
});

describe('child processes', () => {
  it('runs a TypeScript child, SIGSTOPs and SIGCONTs it, and SIGKILLs its process group', async () => {
    const child = spawnNode(new URL('./fixtures/ticker.ts', import.meta.url).pathname);
    await child.waitForMessage<{ n: number }>((m) => m.n >= 2, 10_000, 'ticks');
    child.pause();
    const frozenAt = child.messages().length;
    await new Promise((r) => setTimeout(r, 300));
    expect(child.messages().length).toBeLessThanOrEqual(frozenAt + 1);
    child.resume();
    await child.waitForMessage<{ n: number }>((m) => m.n >= frozenAt + 2, 10_000, 'ticks after SIGCONT');
    const exit = await child.kill();
    expect(exit.signal).toBe('SIGKILL');
  });
});

describe('cleanup', () => {
  it('tracks what it started until closed', async () => {
    const before = liveResources();
    const server = await startServer({ jetstream: false });
    expect(liveResources()).toBe(before + 1);
    await server.close();
    expect(liveResources()).toBe(before);
  });
});

const docker = await dockerStatus();
describe.skipIf(testkitRuntime() !== 'containers' || !docker.available)(
  `containers runtime (GC_TESTKIT_RUNTIME=containers with a Docker engine; now: runtime=${testkitRuntime()}, ${docker.reason})`,
  () => {
    it('starts a nats-server container and restarts it', async () => {
      const server = await startContainerServer();
      const nc = await connect({ servers: server.url });
      await nc.flush();
      await nc.close();
      await server.close();
    });
  },
);

it('reports quickly why the containers runtime is unavailable', async () => {
  const t0 = performance.now();
  const status = await dockerStatus();
  expect(performance.now() - t0).toBeLessThan(2000);
  expect(status.reason.length).toBeGreaterThan(0);
  if (!status.available) console.info(`[testkit] containers runtime skipped: ${status.reason}`);
});

describe('assertClosesOnce', () => {
  const resource = (opts: { early?: boolean; late?: boolean }) => {
    let resolve!: () => void;
    const closed = new Promise<void>((r) => (resolve = r));
    if (opts.early) resolve();
    return {
      closed: () => closed,
      close: async () => {
        if (opts.late) setTimeout(resolve, 5);
        else resolve();
      },
    };
  };

  it('passes a resource that keeps the contract, and names each way of breaking it', async () => {
    await assertClosesOnce(resource({}), 5);
    await expect(assertClosesOnce(resource({ early: true }), 5)).rejects.toThrow(/resolved within 5 ms/);
    await expect(assertClosesOnce(resource({ late: true }), 5)).rejects.toThrow(/had not resolved/);
  });
});
