// The election's factories (createElection on NATS KV, createElectionOnStore on any lease store) and the
// Election they return: start-up, the public API, step-down and closing. The decisions it builds on are in
// core.ts (state, plumbing), follower.ts (observe, acquire) and leader.ts (renew, lose).
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import { ClosedError, TimeoutError, withTimeout, type Epoch } from '@gc/core';
import { openKvLeaseStore } from './kv-store.js';
import { LeaderElection } from './leader.js';
import { MAX_PRIORITY, resolveElectionOptions } from './options.js';
import type { LeaseStore } from './store.js';
import {
  ElectionState,
  type Election,
  type ElectionOptions,
  type StepDownOptions,
  type LeaderInfo,
  type LeaderWatch,
} from './types.js';
import { WatchImpl } from './watch.js';

/** Options accepted by {@link createElection}: everything but `bucket` and `nodeId` has a default. */
export type CreateElectionOptions = Partial<ElectionOptions> & Pick<ElectionOptions, 'bucket' | 'nodeId'>;

/**
 * Creates an election on NATS KV and starts contending (or observing). Async because it opens — and
 * creates when missing — the bucket and reads the lease once before returning. Contending starts on the
 * next tick, so listeners attached right after it resolves see every event, `acquired` included.
 *
 * @example
 * const election = await createElection(nc, { bucket: 'shop_orders_election', nodeId: 'node-a' });
 * election.on('acquired', ({ epoch }) => startServing(epoch));
 * election.on('lost', () => stopServing());
 * await election.waitForLeadership(10_000);
 */
export async function createElection(nc: NatsConnection, opts: CreateElectionOptions): Promise<Election> {
  const o = resolveElectionOptions(opts);
  const store = await openKvLeaseStore(nc, {
    bucket: o.bucket,
    key: o.key,
    replicas: o.replicas,
    timeoutMs: o.opTimeoutMs,
  });
  return startElection(store, o, true);
}

/**
 * Creates an election on any {@link LeaseStore} (for example `MemoryLeaseBackend` on a fake clock).
 * The store is closed with the election.
 */
export async function createElectionOnStore(
  store: LeaseStore,
  opts: CreateElectionOptions,
): Promise<Election> {
  return startElection(store, resolveElectionOptions(opts), true);
}

async function startElection(store: LeaseStore, o: ElectionOptions, ownsStore: boolean): Promise<Election> {
  const e = new ElectionImpl(store, o, ownsStore);
  await e.start();
  return e;
}

/** The {@link Election} returned by the factories: start-up, the public API and closing. */
class ElectionImpl extends LeaderElection implements Election {
  readonly #ownsStore: boolean;
  #stopReconnect: (() => void) | undefined;

  constructor(store: LeaseStore, o: ElectionOptions, ownsStore: boolean) {
    super(store, o);
    this.#ownsStore = ownsStore;
  }

  async start(): Promise<void> {
    this.#stopReconnect = this.store.onReconnect(() => {
      this.connectedAt = this.clock.now();
      this.noResponders = 0;
    });
    this.setState(this.o.observeOnly ? ElectionState.Observer : ElectionState.Follower);
    this.watchLease(true);
    await this.poll();
    // Contend from the next tick on, so that listeners attached right after createElection() resolves see
    // every event, `acquired` included.
    this.timer('start', 0, () => {
      this.started = true;
      this.contend();
    });
  }

  // ----- public API -------------------------------------------------------------------------------------

  epoch(): Epoch {
    return this.lease?.epoch ?? this.leaderInfo.epoch;
  }

  highestEpoch(): Epoch {
    return this.highest;
  }

  leader(): LeaderInfo {
    return { ...this.leaderInfo };
  }

  waitForLeadership(timeoutMs: number): Promise<Epoch> {
    if (this.isLeader()) return Promise.resolve(this.lease!.epoch);
    if (this.state() === ElectionState.Closed) return Promise.reject(new ClosedError('election'));
    return new Promise<Epoch>((resolve, reject) => {
      const done = () => {
        off();
        offState();
        this.clock.clearTimeout(timer);
      };
      const off = this.on('acquired', ({ epoch }) => {
        if (!this.isLeader()) return; // never resolve for a grant that is already gone
        done();
        resolve(epoch);
      });
      const offState = this.on('state', ({ to }) => {
        if (to !== ElectionState.Closed) return;
        done();
        reject(new ClosedError('election'));
      });
      const timer = this.clock.setTimeout(() => {
        done();
        reject(
          new TimeoutError(`leadership of ${this.o.bucket}/${this.o.key} for ${this.nodeId}`, timeoutMs),
        );
      }, timeoutMs);
    });
  }

  // Live as soon as it is registered: leader changes come from this election's own lease watch and reads,
  // running since createElection() resolved. Async for the one watch idiom of gc (as nats.js kv.watch()).
  // eslint-disable-next-line @typescript-eslint/require-await -- async for the one watch idiom; live at once
  async watch(): Promise<LeaderWatch> {
    const w = new WatchImpl(() => this.watches.delete(w));
    this.watches.add(w);
    w.push(this.leader());
    if (this.state() === ElectionState.Closed) w.stop();
    return w;
  }

  observeEpoch(epoch: Epoch): void {
    this.seeEpoch(epoch);
  }

  async stepDown(opts: StepDownOptions = {}): Promise<void> {
    const lease = this.lease;
    if (this.state() !== ElectionState.Leader || !lease) return;
    const cooldownMs = opts.cooldownMs ?? this.o.cooldownMs;
    if (!Number.isFinite(cooldownMs) || cooldownMs < 0) {
      throw new RangeError(
        `stepDown: cooldownMs must be a finite number >= 0, got ${String(opts.cooldownMs)}`,
      );
    }
    const started = this.clock.now();
    this.endLeadership();
    this.instance = randomBytes(6).toString('base64url');
    this.setState(ElectionState.Cooldown);
    let released = false;
    if (opts.release !== false) {
      try {
        await withTimeout(
          this.store.delete(lease.revision, lease.record, this.o.opTimeoutMs),
          this.o.opTimeoutMs,
          'lease delete',
          this.clock,
        );
        released = true;
      } catch (err) {
        // The lease stays until its TTL runs out; this node already stopped acting, so this is only slower.
        this.emit('error', { op: 'delete', error: err as Error });
      }
    }
    this.metrics.transition('step_down', (this.clock.now() - started) / 1000);
    this.log.info('stepped down', { epoch: lease.epoch, released });
    this.emit('stepped-down', { epoch: lease.epoch, released });
    if (this.state() !== ElectionState.Cooldown) return;
    this.timer('cooldown', cooldownMs, () => {
      if (this.state() !== ElectionState.Cooldown) return;
      this.setState(ElectionState.Follower);
      this.contendingSince = this.clock.now();
      this.contend();
    });
  }

  setCandidate(candidate: boolean, opts: { priority?: number } = {}): void {
    let priorityChanged = false;
    if (opts.priority !== undefined) {
      if (!Number.isInteger(opts.priority) || opts.priority < 0 || opts.priority > MAX_PRIORITY)
        throw new RangeError(
          `setCandidate: priority must be an integer 0 … ${MAX_PRIORITY}, got ${String(opts.priority)}`,
        );
      priorityChanged = this.o.priority !== opts.priority;
      this.o.priority = opts.priority;
    }
    const state = this.state();
    if (state === ElectionState.Closed || this.closing) return;
    const changed = this.candidate !== candidate;
    // Called again with what holds already (placement applies its view on every event): nothing to redo, and
    // above all no wait restarted, or frequent calls would keep a free lease from being taken.
    if (!changed && !priorityChanged) return;
    this.candidate = candidate;
    if (changed) this.log.info(candidate ? 'contending again' : 'not a candidate: observing only');
    if (!candidate) {
      // A follower stops at once; a leader (or one cooling down) turns observer when it is back to follower.
      if (state === ElectionState.Follower) this.contend();
      return;
    }
    if (state === ElectionState.Observer) {
      this.setState(ElectionState.Follower);
      this.contendingSince = this.clock.now();
    }
    // A new priority applies to a wait already scheduled too.
    if (this.state() === ElectionState.Follower) this.contend();
  }

  isCandidate(): boolean {
    return this.candidate;
  }

  protected async closeResources(): Promise<void> {
    if (this.state() === ElectionState.Leader) await this.stepDown();
    for (const h of this.timers.values()) this.clock.clearTimeout(h);
    this.timers.clear();
    this.watchLease(false);
    this.stopLiveness?.();
    this.#stopReconnect?.();
    this.setState(ElectionState.Closed);
    for (const w of [...this.watches]) w.stop();
    if (this.#ownsStore) await this.store.close();
  }
}
