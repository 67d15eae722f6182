import { rmSync } from 'node:fs';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { createFence, withTimeout, type Fence } from '@gc/core';
import { PageHashes } from '@gc/sqlite';
import { emitAll } from '../listeners.js';
import { emptyPosition, type WalPosition } from '../position.js';
import type { WalNames } from '../stream.js';
import {
  ReplicaStateName,
  type ReplicaEvent,
  type ReplicaOptions,
  type ReplicaState,
  type ReplicaStateNameValue,
} from '../types.js';

/**
 * Deletes an ordered consumer on the server once its iterator stopped: nats.js leaves it to expire after
 * its inactive threshold (5 minutes), so every restart of a consume loop (a refusal, a bootstrap, a failed
 * promotion) would leave one behind — enough of them and the server refuses new consumers.
 */
export function dropConsumer(consumer: { delete(): Promise<boolean> }): void {
  consumer.delete().catch(() => undefined); // gone already, or the server is away: it expires by itself
}

/**
 * What the parts of a replica (start-up, bootstrap, the consume loop, apply) share: its options and files,
 * its listeners and waiters, the applied state (position and page hashes), the fence of epochs seen, the
 * state reported by `state()`, and the lock that keeps applying, bootstrapping and snapshots apart.
 */
export class ReplicaContext {
  readonly o: ReplicaOptions;
  readonly names: WalNames;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly listeners = new Set<(e: ReplicaEvent) => void>();
  /** Path of the replica copy. */
  readonly replicaPath: string;
  /** The replica's position file (its sidecar). */
  readonly posPath: string;
  /** The apply journal of earlier versions (removed at start: the stream redoes a crash, see redo.ts). */
  readonly journalPath: string;
  /** Page hashes of the replica file as applied. */
  hashes = new PageHashes();
  /** Position applied (the replica file holds this state). */
  pos: WalPosition = emptyPosition();
  /** Epochs seen: a transaction never goes below the highest. */
  fence: Fence = createFence();
  closed = false;
  /** Tail of the queue of {@link ReplicaContext.locked} steps. */
  applyLock: Promise<unknown> = Promise.resolve();
  /** Checked on every {@link ReplicaContext.notify}. */
  waiters: Array<{ check: () => boolean; resolve: () => void }> = [];
  /** What `state()` reports (bootstraps and refusals are counted beside it). */
  state: ReplicaState;
  bootstraps = 0;
  refusals = 0;
  /** Monotonic ms of the last applied batch or completed bootstrap. */
  progressAt = 0;
  /** Creation time of the stream the position's sequences refer to (undefined: not known). */
  streamCreated: string | undefined;
  /** A bootstrap still to do (it failed at start). */
  pendingBootstrap: string | undefined;
  /** Monotonic ms since when the replica has been behind the stream (undefined: caught up). */
  behindSince: number | undefined;

  constructor(o: ReplicaOptions, names: WalNames, js: JetStreamClient, jsm: JetStreamManager) {
    this.o = o;
    this.names = names;
    this.js = js;
    this.jsm = jsm;
    this.replicaPath = o.replicaPath;
    this.posPath = `${o.replicaPath}.gc-position.json`;
    this.journalPath = `${o.replicaPath}.gc-journal`;
    this.state = {
      state: ReplicaStateName.Starting,
      reason: undefined,
      sinceMs: o.clock.wallNow(),
      bootstraps: 0,
      refusals: 0,
      retryAtMs: undefined,
    };
    this.progressAt = o.clock.now();
  }

  setState(state: ReplicaStateNameValue, reason?: string, retryAtMs?: number): void {
    if (this.state.state !== state || this.state.reason !== reason) {
      this.state = {
        ...this.state,
        state,
        reason,
        sinceMs: this.o.clock.wallNow(),
        retryAtMs,
      };
    } else this.state.retryAtMs = retryAtMs;
    this.notify();
  }

  emit(e: ReplicaEvent): void {
    emitAll(this.listeners, e, this.o.logger, 'replica');
  }

  notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.waiters.push({ check, resolve })),
      timeoutMs,
      what,
    );
  }

  /** Runs `fn` after every step queued before it: applying a batch, a bootstrap, a snapshot copy. */
  locked<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.applyLock.then(fn, fn);
    // The chain only orders the steps; each caller gets its own step's result or error.
    this.applyLock = run.catch(() => undefined);
    return run;
  }

  removeReplicaFiles(): void {
    for (const f of [
      this.replicaPath,
      this.posPath,
      this.journalPath,
      `${this.replicaPath}-wal`,
      `${this.replicaPath}-shm`,
    ]) {
      rmSync(f, { force: true });
    }
  }

  sidecar() {
    return {
      ...this.pos,
      platform: this.names.platform,
      app: this.names.app,
      role: 'replica' as const,
      updatedAtMs: this.o.clock.wallNow(),
      ...(this.streamCreated ? { streamCreated: this.streamCreated } : {}),
    };
  }
}
