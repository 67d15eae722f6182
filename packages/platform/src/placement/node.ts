// Placement on this node, as the platform holds it: started once an app with placement is declared (the
// bucket, the agent, the scheduler candidate), its health check, and the operators' handle.
import type { NatsConnection } from '@nats-io/nats-core';
import { ClosedError, type Clock, type Logger } from '@gc/core';
import { PlacementKey, type NodeLabels } from './records.js';
import { watchLabelOverride } from './labels.js';
import type { MigrationLimits } from './gate.js';
import type { Health } from '@gc/health';
import type { Membership } from '@gc/membership';
import type { Registry } from 'prom-client';
import type { AppStatus } from '../types.js';
import type { PlacedApp } from './agent.js';
import { openPlacementBucket, type PlacementBucket } from './bucket.js';
import { placementControl, startPlacement, type PlacementControl, type PlacementRuntime } from './runtime.js';

/** What {@link NodePlacement} needs from the platform. */
export interface NodePlacementDeps {
  nc: NatsConnection;
  platform: string;
  nodeId: string;
  dataDir: string;
  membership: () => Membership | undefined;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  health: Health;
  audit: (type: string, data: Record<string, unknown>, severity?: 'info' | 'warn' | 'error') => void;
  /** The node's apps (read at each use). */
  apps: () => Array<{ name: string; placed(): PlacedApp | undefined; status(): AppStatus }>;
  /** The live nodes and their labels. */
  members: () => Promise<Array<{ nodeId: string; labels: Record<string, string> }>>;
  /** Applies an operator's label changes for this node (undefined: none; the configuration's labels). */
  applyLabelOverride: (override: NodeLabels | undefined) => void;
  /** Limits of automatic migrations while this node schedules. */
  limits?: MigrationLimits;
}

/** This node's placement (see the module comment). */
export class NodePlacement {
  readonly #d: NodePlacementDeps;
  #runtime: Promise<PlacementRuntime> | undefined;
  #bucket: Promise<PlacementBucket> | undefined;
  /** Set once started: why the start failed, if it did (the `placement` health check reads it). */
  #error: { message: string | undefined } | undefined;
  #closed = false;
  #stopLabels: Promise<(() => void) | undefined> | undefined;

  constructor(d: NodePlacementDeps) {
    this.#d = d;
  }

  /**
   * Removes a declaration this node left behind (a crash, a restart before the scheduler noticed): until the
   * agent declares afresh, nothing may read this node as active or ready. Best-effort.
   */
  async clearOwnDeclaration(): Promise<void> {
    const d = this.#d;
    try {
      const b = await (this.#bucket ??= openPlacementBucket(d.nc, d.platform));
      await b.kv.delete(PlacementKey.decl(d.nodeId));
    } catch (err) {
      this.#bucket = undefined;
      d.logger.warn('placement: could not clear the previous declaration of this node', { err });
    }
  }

  /** Starts the agent and the scheduler candidate (once; again after a failed start). */
  start(): Promise<PlacementRuntime> {
    const d = this.#d;
    if (this.#closed) return Promise.reject(new ClosedError(`placement of ${d.nodeId}`));
    if (!this.#error) {
      this.#error = { message: undefined };
      // Red while placement cannot run here, or an app declared here may run on no node (it runs nowhere).
      d.health.register('placement', () => this.#health(), {
        intervalMs: 2000,
        timeoutMs: 1000,
        readiness: false,
      });
    }
    const membership = d.membership();
    if (!membership) return Promise.reject(new Error('placement needs the platform started (membership)'));
    this.#runtime ??= startPlacement({
      nc: d.nc,
      platform: d.platform,
      nodeId: d.nodeId,
      dataDir: d.dataDir,
      membership,
      clock: d.clock,
      logger: d.logger,
      registry: d.registry,
      audit: d.audit,
      apps: () => d.apps().flatMap((a) => a.placed() ?? []),
      ...(d.limits ? { limits: d.limits } : {}),
    }).then(
      (runtime) => {
        this.#error = { message: undefined };
        return runtime;
      },
      (err: unknown) => {
        this.#runtime = undefined;
        this.#error = { message: String(err) };
        d.logger.error('placement did not start: apps with placement stay unplaced here', { err });
        throw err;
      },
    );
    return this.#runtime;
  }

  /**
   * Applies the operators' label changes for this node (`labels.<node>`) and follows them: called by the
   * platform's start before it joins membership, with or without apps with placement, so that the node joins
   * with the labels in force. A failure is logged; the node then runs with its configured labels.
   */
  async watchLabels(): Promise<void> {
    const d = this.#d;
    if (this.#stopLabels) return;
    this.#stopLabels = (this.#bucket ??= openPlacementBucket(d.nc, d.platform))
      .then((b) =>
        watchLabelOverride(b, d.nodeId, d.applyLabelOverride, { clock: d.clock, logger: d.logger }),
      )
      .catch((err: unknown) => {
        this.#stopLabels = undefined;
        this.#bucket = undefined;
        d.logger.warn("placement: operators' label changes for this node are not applied", { err });
        return undefined;
      });
    await this.#stopLabels;
  }

  /** Publishes this node's declaration again (an app was added or removed). */
  refresh(): void {
    void this.#runtime?.then((r) => r.agent.refresh());
  }

  /** The operators' handle (works whether or not placement runs on this node). */
  control(): PlacementControl {
    const d = this.#d;
    return placementControl(() => (this.#bucket ??= openPlacementBucket(d.nc, d.platform)), {
      by: d.nodeId,
      members: d.members,
      audit: (type, data) => d.audit(type, data),
    });
  }

  /** Stops deciding and withdraws this node's declaration. */
  async close(): Promise<void> {
    this.#closed = true;
    (await this.#stopLabels)?.();
    await this.#runtime
      ?.then((r) => r.close())
      .catch((err: unknown) => this.#d.logger.warn('placement close failed', { err }));
  }

  #health(): true | string {
    if (this.#error?.message) return `placement did not start: ${this.#error.message}`;
    const unsat = this.#d
      .apps()
      .map((a) => ({ name: a.name, p: a.status().placement }))
      .filter((x) => x.p?.reason.startsWith('unsatisfiable'));
    return unsat.length ? unsat.map((x) => `app ${x.name} runs nowhere: ${x.p!.reason}`).join('; ') : true;
  }
}
