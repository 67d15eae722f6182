export * from './server.js';
export * from './client.js';
export { defaultRpcClientOptions, rendezvous } from './policy.js';
export * from './errors.js';
export {
  loggingMiddleware,
  metricsMiddleware,
  clientAuthMiddleware,
  serverAuthMiddleware,
  rateLimitMiddleware,
} from './middleware.js';
export type { LoggingMiddlewareOptions, RateLimitOptions } from './middleware.js';
export * from './metrics.js';
export { PLATFORM_RPC_APP, rpcSubjects } from './subjects.js';
export type { RpcSubjects } from './subjects.js';
export { RpcHeader, encodeKeyHeader, decodeKeyHeader } from './codec.js';
export { defaultIdempotencyOptions, idempotencyBucket } from './idempotency.js';
export { TRACER_NAME } from './tracing.js';
export type * from './types.js';
