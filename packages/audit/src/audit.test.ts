import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { jetstreamManager } from '@nats-io/jetstream';
import { ClosedError, ConfigError, connect, InvalidNameError } from '@gc/core';
import { ServerFixture, serverFlavors, waitFor } from '@gc/testkit';
import { AuditErrorCode, AuditRecordError, createAudit, type AuditInput, type AuditRecord } from './index.js';

const flavors = serverFlavors(
  '[audit] skipping the nats-server 2.10.x runs: no 2.10 binary (run scripts/provision-nats.sh)',
);

let seq = 0;

describe.each(flavors)('audit on nats-server (%s)', (flavor) => {
  const nats = new ServerFixture({ server: { flavor }, connect: (url) => connect({ servers: url }) });
  const audit = async (platform: string, nodeId = 'node-a', extra: Record<string, unknown> = {}) => {
    const a = await createAudit(nats.nc, { platform, nodeId, maxBytes: 8 << 20, ...extra });
    nats.track(a);
    return a;
  };

  beforeAll(() => nats.start());
  afterAll(() => nats.close());

  it('creates the stream with its subjects and limits, and records with the stable schema', async () => {
    const p = `a${++seq}`;
    const a = await audit(p, 'node-a', { maxAgeMs: 3_600_000, maxBytes: 10_000_000 });
    expect(a.stream).toBe(`${p}_audit`);
    const jsm = await jetstreamManager(nats.nc);
    const info = await jsm.streams.info(`${p}_audit`);
    expect(info.config.subjects).toEqual([`${p}._.audit.>`]);
    expect(info.config.max_age).toBe(3_600_000 * 1e6);
    expect(info.config.max_bytes).toBe(10_000_000);
    const r = await a.record({
      type: 'lock.forced',
      app: 'orders',
      epoch: 7,
      data: { lock: 'job' },
      severity: 'warn',
    });
    expect(r).toMatchObject({
      v: 1,
      node: 'node-a',
      type: 'lock.forced',
      app: 'orders',
      epoch: 7,
      severity: 'warn',
      data: { lock: 'job' },
    });
    expect(r!.id).toMatch(/^\w{22}$/);
    expect(new Date(r!.time).toISOString()).toBe(r!.time);
    const msg = await jsm.streams.getMessage(`${p}_audit`, { seq: r!.seq! });
    expect(msg!.subject).toBe(`${p}._.audit.lock.forced`);
    expect(Object.keys(msg!.json<Record<string, unknown>>()).sort()).toEqual(
      ['app', 'data', 'epoch', 'id', 'node', 'severity', 'time', 'type', 'v'].sort(),
    );
    // Reopening with other limits updates them; a reader with defaults (the CLI) leaves them alone.
    await audit(p, 'node-b', { maxAgeMs: 7_200_000 });
    expect((await jsm.streams.info(`${p}_audit`)).config.max_age).toBe(7_200_000 * 1e6);
    const cli = await createAudit(nats.nc, { platform: p, nodeId: 'gc-cli' });
    nats.track(cli);
    const after = (await jsm.streams.info(`${p}_audit`)).config;
    expect([after.max_age, after.max_bytes]).toEqual([7_200_000 * 1e6, 8 << 20]); // as node-b set them
  });

  it('queries by type pattern, app, node, severity, time range and limit', async () => {
    const p = `a${++seq}`;
    const a = await audit(p, 'node-a');
    const b = await audit(p, 'node-b');
    await a.record({ type: 'election.leader_acquired', app: 'orders', epoch: 1 });
    await b.record({ type: 'lock.acquired', app: 'billing', data: { n: 1 } });
    await new Promise((r) => setTimeout(r, 30));
    const mid = Date.now();
    await new Promise((r) => setTimeout(r, 30));
    await a.record({ type: 'lock.forced', app: 'orders', severity: 'warn' });
    for (let i = 0; i < 5; i++) await b.record({ type: 'rpc.call', app: 'orders', data: { i } });
    expect(await a.query()).toHaveLength(8);
    expect((await a.query({ type: 'lock.*' })).map((r) => r.type)).toEqual(['lock.acquired', 'lock.forced']);
    expect((await a.query({ type: 'election.>' })).map((r) => r.epoch)).toEqual([1]);
    expect((await a.query({ app: 'billing' })).map((r) => r.node)).toEqual(['node-b']);
    expect(await a.query({ node: 'node-a' })).toHaveLength(2);
    expect((await a.query({ severity: 'warn' })).map((r) => r.type)).toEqual(['lock.forced']);
    expect((await a.query({ since: mid })).map((r) => r.type)[0]).toBe('lock.forced');
    expect(await a.query({ until: new Date(mid) })).toHaveLength(2);
    const last = await a.query({ type: 'rpc.call', limit: 2 });
    expect(last.map((r) => (r.data as { i: number }).i)).toEqual([3, 4]); // the newest, oldest first
    expect(await a.query({ type: 'nothing.here' })).toEqual([]);
    await expect(a.query({ limit: 0 })).rejects.toBeInstanceOf(ConfigError);
    await expect(a.query({ since: 'yesterday-ish' })).rejects.toThrow(/not a time/);
    await expect(a.query({ type: 'bad..type' })).rejects.toBeInstanceOf(InvalidNameError);
  });

  it('tails new records live with filters; stop() ends the iteration', async () => {
    const p = `a${++seq}`;
    const a = await audit(p, 'node-a');
    await a.record({ type: 'old.one' });
    const tail = await a.tail({ app: 'orders' });
    const got: AuditRecord[] = [];
    const done = (async () => {
      for await (const r of tail) got.push(r);
    })();
    // No wait: the consumer exists once tail() resolved.
    await a.record({ type: 'x.y', app: 'orders' });
    await a.record({ type: 'x.y', app: 'billing' });
    await a.record({ type: 'x.z', app: 'orders' });
    await waitFor(() => got.length === 2);
    expect(got.map((r) => r.type)).toEqual(['x.y', 'x.z']);
    tail.stop();
    await done;
    const fromStart = await a.tail({ since: 0, type: 'old.*' });
    for await (const r of fromStart) {
      expect(r.type).toBe('old.one');
      fromStart.stop();
    }
  });

  it('tail() resolves once its consumer exists: a record stored right after it is delivered, every time', async () => {
    const p = `a${++seq}`;
    const a = await audit(p, 'node-a');
    for (let i = 0; i < 10; i++) {
      const tail = await a.tail({ type: 'now.*' });
      await a.record({ type: 'now.here', data: { i } });
      const next = await Promise.race([
        tail[Symbol.asyncIterator]().next(),
        new Promise((r) => setTimeout(() => r('missed'), 3000)),
      ]);
      expect(next).toMatchObject({ value: { type: 'now.here', data: { i } } });
      tail.stop();
    }
    // A stopped tail removes its consumer instead of leaving it to expire.
    const jsm = await jetstreamManager(nats.nc);
    await waitFor(async () => (await jsm.streams.info(a.stream)).state.consumer_count === 0, {
      timeoutMs: 5000,
      message: 'the stopped tails consumers removed',
    });
    const open = await a.tail();
    const ended = (async () => {
      for await (const _ of open) void _;
    })();
    await a.close();
    await ended; // closing the audit ends its tails
    await expect(a.tail()).rejects.toBeInstanceOf(ClosedError);
  });

  it('record() never throws into the caller: bad input and failures are counted, logged and reported', async () => {
    const p = `a${++seq}`;
    const errors: Array<{ err: Error; input: AuditInput }> = [];
    const registry = new Registry();
    const a = await audit(p, 'node-a', {
      registry,
      onError: (err: Error, input: AuditInput) => errors.push({ err, input }),
    });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const bad: AuditInput[] = [
      { type: 'lock.*' },
      { type: '' },
      { type: 'a b' },
      { type: 'ok', app: 'Not_An_App' },
      { type: 'ok', data: circular },
      { type: 'ok', data: { n: 10n } },
      { type: 'ok', severity: 'fatal' as 'error' },
      { type: 'ok', data: 'x'.repeat(2 * 1024 * 1024) },
      null as unknown as AuditInput,
    ];
    for (const input of bad) {
      let result: unknown = 'not-called';
      expect(() => {
        result = a.record(input);
      }).not.toThrow();
      await expect(result).resolves.toBeUndefined();
    }
    expect(errors).toHaveLength(bad.length);
    expect(
      errors.every((e) => e.err instanceof AuditRecordError && e.err.code === AuditErrorCode.RecordFailed),
    ).toBe(true);
    expect(errors[0]!.err.message).toMatch(/wildcards/);
    expect(errors[7]!.err.message).toMatch(/max_payload/);
    expect(a.stats()).toEqual({ recorded: 0, failed: bad.length, pending: 0 });
    expect(await registry.getSingleMetricAsString('gc_audit_records_total')).toMatch(/result="failed"\} 9/);
    // A dead connection: still no throw.
    const nc2 = await connect({ servers: nats.server.url });
    const b = await createAudit(nc2, {
      platform: p,
      nodeId: 'node-b',
      publishTimeoutMs: 500,
      maxBytes: 8 << 20,
    });
    await nc2.close();
    await expect(b.record({ type: 'after.close' })).resolves.toBeUndefined();
    expect(b.stats().failed).toBe(1);
    await b.close();
    await expect(b.record({ type: 'after.audit.close' })).resolves.toBeUndefined();
    expect(b.stats().failed).toBe(2);
  });

  it('close() flushes records in flight; closed() resolves after it', async () => {
    const p = `a${++seq}`;
    const a = await createAudit(nats.nc, { platform: p, nodeId: 'node-a', maxBytes: 8 << 20 });
    let closed = false;
    void a.closed().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    for (let i = 0; i < 20; i++) void a.record({ type: 'burst', data: { i } });
    expect(a.stats().pending).toBeGreaterThan(0);
    await a.close();
    expect(closed).toBe(true);
    await a.close();
    expect(a.stats()).toMatchObject({ recorded: 20, pending: 0 });
    const reader = await audit(p, 'reader');
    expect(await reader.query({ type: 'burst' })).toHaveLength(20);
  });

  it('refuses bad options with clear errors', async () => {
    await expect(createAudit(nats.nc, { platform: 'a_b', nodeId: 'n' })).rejects.toBeInstanceOf(
      InvalidNameError,
    );
    await expect(createAudit(nats.nc, { platform: 'ok', nodeId: 'n', maxAgeMs: -1 })).rejects.toThrow(
      /audit.maxAgeMs/,
    );
  });
});
