import {
  context,
  propagation,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

/** Name and version under which spans are created. */
export const TRACER_NAME = '@gc/rpc';

const setter: TextMapSetter<Map<string, string>> = {
  set: (carrier, key, value) => void carrier.set(key, value),
};

const getter: TextMapGetter<Map<string, string>> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key),
};

// A proxy tracer: it delegates to whatever SDK is registered, also one registered after this module loaded.
const proxyTracer = trace.getTracer(TRACER_NAME);

/** The tracer (a no-op until an OpenTelemetry SDK is registered). */
export function tracer() {
  return proxyTracer;
}

/** Writes the trace context of `ctx` (W3C `traceparent`/`tracestate` with the usual propagator) into `headers`. */
export function injectTrace(ctx: Context, headers: Map<string, string>): void {
  propagation.inject(ctx, headers, setter);
}

/** Reads a trace context from request headers (the active context when there is none). */
export function extractTrace(headers: Map<string, string>): Context {
  if (headers.size === 0) return context.active();
  return propagation.extract(context.active(), headers, getter);
}
