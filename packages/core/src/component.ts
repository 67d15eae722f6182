import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import type { Clock } from './clock.js';
import type { Epoch } from './epoch.js';
import type { Logger } from './logger.js';

/** Severity of an audit record a component writes. */
export type AuditSeverity = 'info' | 'warn' | 'error';

/** What a component gets when its app starts on a node. */
export interface ComponentContext {
  /** Platform, app and node. */
  platform: string;
  app: string;
  nodeId: string;
  /** The node's NATS connection (not to be closed by the component). */
  nc: NatsConnection;
  /** Folder for this node's durable state. */
  dataDir: string;
  clock: Clock;
  /** Bound to the app and the component. */
  logger: Logger;
  /** The node's Prometheus registry, when it has one. */
  registry: Registry | undefined;
  /**
   * Writes an audit record of type `type` for the app (name it `<component>.<what>`, e.g. `wal.promoted`);
   * `severity` defaults to the platform's mapping for the type (`info` when it has none).
   */
  audit(type: string, data: Record<string, unknown>, severity?: AuditSeverity): void;
  /** Hands leadership on: the component found that this node can no longer act as the active one. */
  stepDown(reason: string): void;
  /**
   * The epoch of this node's current leadership, or undefined when it does not lead (checked at call time:
   * false the moment a renew deadline passes). A fence for resources the component writes.
   */
  leaderEpoch(): Epoch | undefined;
}

/** What an activate or deactivate step receives. */
export interface ComponentTransition {
  /** The leadership epoch being activated or given up (0 for pool apps). */
  epoch: Epoch;
  /** Aborted when the step runs out of time, or the transition is superseded. */
  signal: AbortSignal;
  /** Why the app deactivates (`deactivate` only). */
  reason: string | undefined;
}

/**
 * One part of an app on a node: its standby duty (`start`), its step in the active sequence (`activate`,
 * undone by `deactivate` in reverse order), its status and health. The platform runs the components of an
 * app in `order` (built-ins: database 100, VIP 200, backend 300, the app's onActive/onPassive hooks 1000;
 * other components default to 500), each step timed, bounded by `timeoutMs` and audited; when a step fails
 * the ones already done are undone and the node hands leadership on.
 *
 * @example
 * // A component that holds a lock file while the app is active (see examples/components).
 * const lockFile = (path: string): AppComponent => ({
 *   name: 'lock-file',
 *   activate: async ({ epoch }) => writeFile(path, String(epoch), { flag: 'wx' }),
 *   deactivate: async () => rm(path, { force: true }),
 * });
 * platform.app('orders', { components: [lockFile('/run/orders.lock')] });
 */
export interface AppComponent {
  /** Unique within the app; letters, digits and `-`. Names its health check `<name>-<app>`. */
  readonly name: string;
  /** Position in the active sequence (lower first). Default 500. */
  readonly order?: number;
  /** Time limit of its activate and deactivate steps, in ms. Default 60000. */
  readonly timeoutMs?: number;
  /** The app starts on this node (before any election): standby duties, such as following a stream. */
  start?(ctx: ComponentContext): Promise<void>;
  /** Its step on the way to active. */
  activate?(t: ComponentTransition): Promise<void>;
  /** Its step on the way back (also after a later step failed). */
  deactivate?(t: ComponentTransition): Promise<void>;
  /** The app begins to shut down on this node (called before the last deactivate). */
  stopping?(): void;
  /** The app stops on this node: release everything. */
  stop?(): Promise<void>;
  /** Refreshes what `status()` reports (I/O allowed); called before a status is built and by health. */
  refresh?(): Promise<void>;
  /** Plain data shown under the component's name in the app's status. */
  status?(): Record<string, unknown> | undefined;
  /**
   * Health on this node: `true`, or why it is broken. When present, registered as the critical health
   * check `<name>-<app>` (not part of readiness), run every 2 s after `refresh()`.
   */
  health?(): true | string;
}
