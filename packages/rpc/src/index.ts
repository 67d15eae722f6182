export { createRpcServer, defaultRpcServerOptions } from './server.js';
export { createRpcClient } from './client.js';
export { defaultRpcClientOptions, rendezvous } from './policy.js';
export {
  RpcErrorCode,
  RpcError,
  NoInstanceError,
  UnknownMethodError,
  RpcTimeoutError,
  CircuitOpenError,
  BulkheadFullError,
  BadPayloadError,
  PayloadTooLargeError,
  HandlerError,
  NotLeaderError,
  NotOwnerError,
  RpcFencedError,
  UnauthorizedError,
  RateLimitedError,
  IdempotencyConflictError,
  ProtocolError,
} from './errors.js';
export type { RpcErrorCodeValue } from './errors.js';
export {
  loggingMiddleware,
  metricsMiddleware,
  clientAuthMiddleware,
  serverAuthMiddleware,
  rateLimitMiddleware,
} from './middleware.js';
export type { LoggingMiddlewareOptions, RateLimitOptions } from './middleware.js';
export { rpcMetrics } from './metrics.js';
export type { RpcMetrics } from './metrics.js';
export { PLATFORM_RPC_APP, rpcSubjects } from './subjects.js';
export type { RpcSubjects } from './subjects.js';
export { RpcHeader, encodeKeyHeader, decodeKeyHeader } from './codec.js';
export { defaultIdempotencyOptions, idempotencyBucket } from './idempotency.js';
export { TRACER_NAME } from './tracing.js';
export type {
  AdmitKeyHook,
  AppApi,
  BulkheadOptions,
  CallOptions,
  CallTarget,
  CircuitOptions,
  CircuitStateName,
  ClientContext,
  Handler,
  HandleOptions,
  IdempotencyOptions,
  Middleware,
  PayloadSchema,
  RetryOptions,
  RouteHook,
  RouteRetry,
  RpcClient,
  RpcClientInit,
  RpcClientOptions,
  RpcContextBase,
  RpcServer,
  RpcServerInit,
  RpcServerOptions,
  ServerContext,
  StandardResult,
} from './types.js';
