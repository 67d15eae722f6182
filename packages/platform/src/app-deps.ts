// What an app (app.ts) is given by its platform: the connection, its resource names, clock, logger,
// metrics, and the platform's hooks for audit, health and membership.
import type { AppResourceNames, AuditSeverity, Clock, ConnectOptions, Logger } from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';
import type { PlatformMetrics } from './metrics.js';
import type { HookFailure } from './types.js';

/** What an app needs from its platform. */
export interface AppDeps {
  nc: NatsConnection;
  /** The options the platform connected with; undefined when it was given a connection. */
  connectOptions: Partial<ConnectOptions> | undefined;
  nodeId: string;
  names: AppResourceNames;
  dataDir: string;
  clock: Clock;
  logger: Logger;
  metrics: PlatformMetrics;
  registry: PlatformMetrics['registry'];
  onHookFailure: (f: HookFailure) => void;
  /** Tells membership which apps this node runs. */
  appsChanged: () => void;
  /** False while the node is unhealthy: its RPC instances leave the `any` pool. */
  healthy: () => boolean;
  audit: (type: string, data: Record<string, unknown>, severity?: AuditSeverity) => void;
  /**
   * Adds a check to the node's health (`/health`, `gc health`): critical (a broken replica makes the node
   * unhealthy) but not part of readiness (the node still serves its other apps).
   */
  registerHealth: (name: string, check: () => Promise<true | string>) => void;
  unregisterHealth: (name: string) => void;
}
