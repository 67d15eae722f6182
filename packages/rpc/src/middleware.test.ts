import { createLogger, FakeClock } from '@gc/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcErrorCode } from './errors.js';
import {
  clientAuthMiddleware,
  loggingMiddleware,
  rateLimitMiddleware,
  serverAuthMiddleware,
} from './middleware.js';
import type { ClientContext, Middleware, ServerContext } from './types.js';
import { rpcFixture } from './test/fixture.js';
import { rejection } from './test/helpers.js';

const rig = rpcFixture();

const platform = 'mw';

describe('middleware (real nats-server)', () => {
  it('runs client and server middleware in list order, outermost first, around the handler', async () => {
    const trail: string[] = [];
    const mark =
      <C extends ServerContext | ClientContext>(name: string): Middleware<C> =>
      async (ctx, next) => {
        trail.push(`${name}>`);
        const r = await next();
        trail.push(`<${name}`);
        return ctx.side === 'server' ? { wrapped: name, r } : r;
      };
    const s = await rig.server({
      platform,
      app: 'order',
      nodeId: 'n1',
      middleware: [mark<ServerContext>('s1'), mark<ServerContext>('s2')],
    });
    s.handle('op', () => {
      trail.push('handler');
      return 'x';
    });
    const client = await rig.client({
      platform,
      middleware: [mark<ClientContext>('c1'), mark<ClientContext>('c2')],
    });
    const r = await client.api('order').call('op');
    expect(trail).toEqual(['c1>', 'c2>', 's1>', 's2>', 'handler', '<s2', '<s1', '<c2', '<c1']);
    // The outer server middleware sees (and may transform) the inner one's result.
    expect(r).toEqual({ wrapped: 's1', r: { wrapped: 's2', r: 'x' } });
  });

  it('auth: the client sends a token, the server refuses a missing or wrong one before the handler', async () => {
    let runs = 0;
    const s = await rig.server({
      platform,
      app: 'vault',
      nodeId: 'n1',
      middleware: [serverAuthMiddleware((token) => token === 's3cret')],
    });
    s.handle('read', (_p, ctx) => (runs++, ctx.headers.get('Gc-Rpc-Caller')));
    const good = await rig.client({
      platform,
      caller: 'billing',
      middleware: [clientAuthMiddleware('s3cret')],
    });
    expect(await good.api('vault').call('read')).toBe('billing');
    const none = await rig.client({ platform });
    const e1 = await rejection(none.api('vault').call('read'));
    expect(e1.code).toBe(RpcErrorCode.Unauthorized);
    expect(e1.message).toBe('vault.read refused: no auth token was sent');
    const wrong = await rig.client({ platform, middleware: [clientAuthMiddleware(() => 'guess')] });
    expect((await rejection(wrong.api('vault').call('read'))).message).toBe(
      'vault.read refused: the auth token was not accepted',
    );
    expect(runs).toBe(1);
  });

  it('rate limit: a token bucket refuses calls over the rate (server side and client side)', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const s = await rig.server({
      platform,
      app: 'api',
      nodeId: 'n1',
      middleware: [rateLimitMiddleware({ ratePerSecond: 2, burst: 3, clock })],
    });
    s.handle('q', () => ++runs);
    const api = (await rig.client({ platform })).api('api');
    for (let i = 0; i < 3; i++) await api.call('q');
    const err = await rejection(api.call('q'));
    expect(err.code).toBe(RpcErrorCode.RateLimited);
    expect(err.message).toBe('api.q refused by the server rate limit of 2 calls/s; retry later');
    await clock.advance(500); // one token back
    expect(await api.call('q')).toBe(4);
    expect((await rejection(api.call('q'))).code).toBe(RpcErrorCode.RateLimited);
    expect(runs).toBe(4);

    const limited = await rig.client({
      platform,
      middleware: [rateLimitMiddleware({ ratePerSecond: 1, burst: 1, clock })],
    });
    await clock.advance(10_000);
    await limited.api('api').call('q');
    expect((await rejection(limited.api('api').call('q'))).message).toMatch(
      /client rate limit of 1 calls\/s/,
    );
  });

  it('logging: one line per call on each side with method, duration and result code', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      format: 'json',
      level: 'debug',
      sink: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    const s = await rig.server({
      platform,
      app: 'logs',
      nodeId: 'n1',
      middleware: [loggingMiddleware(logger)],
    });
    s.handle('ok', () => 1);
    s.handle('bad', () => {
      throw Object.assign(new Error('x'), { code: 'E_X' });
    });
    const client = await rig.client({ platform, middleware: [loggingMiddleware(logger)] });
    await client.api('logs').call('ok');
    await rejection(client.api('logs').call('bad'));
    const rpcLines = lines.filter((l) => String(l.msg).startsWith('rpc '));
    expect(rpcLines.map((l) => l.msg)).toEqual([
      'rpc server logs.ok ok',
      'rpc client logs.ok ok',
      'rpc server logs.bad failed',
      'rpc client logs.bad failed',
    ]);
    expect(rpcLines[3]).toMatchObject({ level: 'warn', side: 'client', code: RpcErrorCode.HandlerError });
    expect(typeof rpcLines[0]!.durationMs).toBe('number');
  });

  it('metrics: calls, errors by code, latency, in-flight and circuit state on the injected registry', async () => {
    const registry = new Registry();
    const s = await rig.server({ platform, app: 'met', nodeId: 'n1', registry });
    s.handle('ok', () => 1);
    s.handle('bad', () => {
      throw new Error('no');
    });
    const client = await rig.client({ platform, registry });
    for (let i = 0; i < 3; i++) await client.api('met').call('ok');
    await rejection(client.api('met').call('bad'));
    await rejection(client.api('met').call('missing'));
    const text = await registry.metrics();
    expect(text).toContain('gc_rpc_calls_total{side="client",app="met",method="ok",code="OK"} 3');
    expect(text).toContain('gc_rpc_calls_total{side="server",app="met",method="ok",code="OK"} 3');
    expect(text).toContain(
      `gc_rpc_errors_total{side="client",app="met",method="bad",code="${RpcErrorCode.HandlerError}"} 1`,
    );
    expect(text).toContain(
      `gc_rpc_errors_total{side="client",app="met",method="missing",code="${RpcErrorCode.UnknownMethod}"} 1`,
    );
    expect(text).toContain('gc_rpc_duration_seconds_count{side="client",app="met",method="ok"} 3');
    expect(text).toContain('gc_rpc_in_flight{side="client",app="met"} 0');
    expect(text).toContain('gc_rpc_circuit_state{app="met",target="any"} 0');
  });
});

describe('tracing (OpenTelemetry, W3C trace context in NATS headers)', () => {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('a client span per call and a server span per handler, joined by the propagated trace context', async () => {
    const s = await rig.server({ platform, app: 'traced', nodeId: 'n1' });
    let handlerTrace: string | undefined;
    s.handle('op', (_p, ctx) => {
      handlerTrace = ctx.span.spanContext().traceId;
      return ctx.headers.get('traceparent');
    });
    const client = await rig.client({ platform });
    const parent = trace.getTracer('test').startSpan('checkout');
    const traceparent = await context.with(trace.setSpan(context.active(), parent), () =>
      client.api('traced').call<string>('op'),
    );
    parent.end();
    const spans = exporter.getFinishedSpans();
    const clientSpan = spans.find((x) => x.name === 'rpc.client traced.op')!;
    const serverSpan = spans.find((x) => x.name === 'rpc.server traced.op')!;
    expect(clientSpan.kind).toBe(SpanKind.CLIENT);
    expect(serverSpan.kind).toBe(SpanKind.SERVER);
    const traceId = parent.spanContext().traceId;
    expect(clientSpan.spanContext().traceId).toBe(traceId);
    expect(serverSpan.spanContext().traceId).toBe(traceId);
    expect(handlerTrace).toBe(traceId);
    expect(clientSpan.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(serverSpan.parentSpanContext?.spanId).toBe(clientSpan.spanContext().spanId);
    expect(traceparent).toBe(`00-${traceId}-${clientSpan.spanContext().spanId}-01`);
    expect(serverSpan.attributes).toMatchObject({
      'rpc.service': 'traced',
      'rpc.method': 'op',
      'gc.node': 'n1',
    });

    // Handler errors are recorded on both spans; an unknown method has no handler span.
    s.handle('fail', () => {
      throw new Error('nope');
    });
    exporter.reset();
    await rejection(client.api('traced').call('fail'));
    expect(exporter.getFinishedSpans().map((x) => [x.name, x.status.code])).toEqual([
      ['rpc.server traced.fail', SpanStatusCode.ERROR],
      ['rpc.client traced.fail', SpanStatusCode.ERROR],
    ]);
    exporter.reset();
    await rejection(client.api('traced').call('missing'));
    expect(exporter.getFinishedSpans().map((x) => [x.name, x.status.code])).toEqual([
      ['rpc.client traced.missing', SpanStatusCode.ERROR],
    ]);
  });
});
