import { DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import type { TimerHandle } from '@gc/core';
import { CorruptMessageError, DivergedError, GapError } from '../errors.js';
import type { ReplicaOptions } from '../types.js';
import { ReplicaStateName } from '../types.js';
import { messageHeaders } from '../headers.js';
import { TxAssembler, TxKind, WalHeader, parseChunkHeaders } from '../wire.js';
import type { Applier, ReadyTx } from './apply.js';
import { bootstrap, type ReplicaParts } from './bootstrap.js';
import { dropConsumer, type ReplicaContext } from './context.js';
import type { Stalls } from './stalls.js';

/** The stream sequence a refusal is about, for telling causes apart. */
function refusalSeq(e: Error): number | string {
  return (e as { seq?: number }).seq ?? e.message;
}

/**
 * The consume loop of a replica: reads the WAL stream from the position on, assembles transactions,
 * batches them for the applier, and turns refusals and failures into one bootstrap per cause or a stall.
 */
export class Follower {
  readonly #ctx: ReplicaContext;
  readonly #o: ReplicaOptions;
  readonly #applier: Applier;
  readonly #stalls: Stalls;
  readonly #parts: ReplicaParts;
  messages: ConsumerMessages | undefined;
  #batch: ReadyTx[] = [];
  #batchBytes = 0;
  readonly #pullMessages: () => number;
  /** Set after a rebase: messages at or below the position's txid are skipped until the first one after it. */
  #skipApplied = false;

  constructor(parts: ReplicaParts, pullMessages: () => number) {
    this.#ctx = parts.ctx;
    this.#o = parts.ctx.o;
    this.#applier = parts.applier;
    this.#stalls = parts.stalls;
    this.#parts = parts;
    this.#pullMessages = pullMessages;
  }

  /**
   * Consumes until closed. A refused transaction (gap, divergence, corrupt message) leads to one bootstrap
   * per cause: when the same refusal comes back after it with nothing applied in between, bootstrapping
   * again would not help — the replica is `stalled` (event, state, health) and retries with backoff (a
   * newer snapshot may have appeared). Other failures (server, network) are retried with backoff too, and
   * stall the replica once they repeat.
   */
  async run(): Promise<void> {
    while (!this.#ctx.closed) {
      let waitMs = this.#o.retryDelayMs;
      try {
        if (this.#ctx.pendingBootstrap) {
          const reason = this.#ctx.pendingBootstrap;
          await this.#ctx.locked(() => bootstrap(this.#parts, reason));
          this.#ctx.pendingBootstrap = undefined;
        }
        const stuck = this.#stalls.stuck;
        if (stuck && this.#ctx.state.state === ReplicaStateName.Stalled) {
          // Stalled on a refusal a bootstrap did not cure: only a newer snapshot can (the refused message
          // stays in the stream). Without one, reading the stream again just confirms the refusal.
          const latest = await this.#o.snapshots?.latest();
          if (latest && latest.txid > stuck.snapshotTxid) {
            stuck.snapshotTxid = latest.txid;
            await this.#ctx.locked(() =>
              bootstrap(this.#parts, `a newer snapshot (txid ${latest.txid}) after: ${stuck.reason}`),
            );
          }
        }
        if (this.#ctx.state.state !== ReplicaStateName.Stalled)
          this.#ctx.setState(ReplicaStateName.Following);
        await this.#consume();
      } catch (err) {
        if (this.#ctx.closed) break;
        const e = err as Error;
        this.#batch = [];
        this.#batchBytes = 0;
        this.#stalls.failures++;
        if (e instanceof GapError || e instanceof DivergedError || e instanceof CorruptMessageError) {
          const key = `${e.name}@${refusalSeq(e)}`;
          this.#ctx.refusals++;
          if (this.#stalls.stuck?.key === key) {
            // The same refusal after a bootstrap: bootstrapping again from the same snapshot would not
            // help. Stalled (reported once), retried with backoff when a newer snapshot appears.
            waitMs = this.#stalls.stall(
              `${e.message} (again after a bootstrap; waiting for a newer snapshot)`,
            );
          } else {
            this.#o.logger.warn('replica refused stream data', { err: e.message });
            this.#ctx.emit({ type: 'refused', error: e });
            // No snapshot list now: -1 lets any snapshot count as newer.
            const latest = await this.#o.snapshots?.latest().catch(() => undefined);
            this.#stalls.stuck = {
              key,
              reason: e.message,
              seq: typeof (e as { seq?: unknown }).seq === 'number' ? (e as { seq: number }).seq : 0,
              snapshotTxid: latest?.txid ?? -1,
            };
            // A history that went back below this copy's txid (not a plain gap ahead of it) replaced ours.
            const backwards =
              (e instanceof GapError && e.gotTxid <= e.expectedTxid - 1) || e instanceof DivergedError;
            try {
              await this.#ctx.locked(() =>
                bootstrap(this.#parts, e.message, backwards && this.#ctx.pos.txid > 0),
              );
              this.#ctx.setState(ReplicaStateName.Following);
            } catch (be) {
              this.#ctx.emit({ type: 'error', error: be as Error });
              waitMs = this.#stalls.stall(`bootstrap failed: ${(be as Error).message}`);
            }
          }
        } else {
          if (e.message !== this.#stalls.lastErrorMessage) this.#ctx.emit({ type: 'error', error: e });
          this.#stalls.lastErrorMessage = e.message;
          waitMs =
            this.#stalls.failures >= 3
              ? this.#stalls.stall(e.message)
              : Math.min(this.#o.maxRetryDelayMs, this.#o.retryDelayMs * 2 ** (this.#stalls.failures - 1));
        }
        // Closing aborts the wait; the loop checks `closed`.
        await this.#o.clock.sleep(waitMs).catch(() => undefined);
      }
    }
  }

  /**
   * Checks the position's stream sequence against the stream as it is now. Sequences are only a cursor —
   * every transaction is checked by txid and checksum — but a stream deleted and made anew, or a snapshot
   * taken on an older stream, gives them another meaning: then the replica reads from the stream's first
   * message and skips what it already holds. A replica the stream was trimmed past, with nothing left to
   * read, bootstraps at once instead of waiting for a write that may never come.
   */
  async #alignWithStream(): Promise<void> {
    const info = await this.#ctx.jsm.streams.info(this.#ctx.names.stream);
    const { first_seq: first, last_seq: last, messages } = info.state;
    let why: string | undefined;
    if (this.#ctx.streamCreated !== undefined && this.#ctx.streamCreated !== info.created)
      why = 'the WAL stream was deleted and made anew';
    else if (this.#ctx.pos.seq > last)
      why = `the stream ends at seq ${last}, before this replica's seq ${this.#ctx.pos.seq}`;
    else if (this.#ctx.pos.txid > 0 && this.#ctx.pos.seq >= first && this.#ctx.pos.seq <= last) {
      // null when trimmed since the info above: nothing to compare. Other failures end this consume and are
      // retried by the loop.
      const m = await this.#ctx.jsm.streams.getMessage(this.#ctx.names.stream, { seq: this.#ctx.pos.seq });
      const txid = Number(m?.header.get(WalHeader.Txid));
      if (m && txid !== this.#ctx.pos.txid)
        why = `stream seq ${this.#ctx.pos.seq} holds txid ${txid}, not ${this.#ctx.pos.txid}`;
    }
    this.#ctx.streamCreated = info.created;
    if (why) {
      this.#o.logger.warn('replica position rebased on the stream', { why, txid: this.#ctx.pos.txid });
      this.#ctx.pos = { ...this.#ctx.pos, seq: Math.max(0, first - 1) };
      this.#skipApplied = true;
      return;
    }
    if (messages === 0 && last > this.#ctx.pos.seq) {
      throw new GapError(
        this.#ctx.pos.txid + 1,
        NaN,
        last,
        `the stream was trimmed past this replica (seq ${this.#ctx.pos.seq}) and holds nothing after it`,
      );
    }
  }

  async #consume(): Promise<void> {
    await this.#alignWithStream();
    const startSeq = this.#ctx.pos.seq + 1;
    const consumer = await this.#ctx.js.consumers.get(this.#ctx.names.stream, {
      filter_subjects: this.#ctx.names.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
    });
    const assembler = new TxAssembler();
    // Bound a pull to a share of ~16 MiB of the largest possible messages per connection: the server's
    // per-connection pending limit (64 MiB) must hold every replica's pull on it, or deliveries are
    // dropped as a slow consumer and the ordered consumer stalls and resets.
    // A pull of 8 or more is refilled once three quarters of it were delivered (nats.js's default is a
    // quarter: with 16 messages that is a pull request, and its handling on the server, every 4 messages).
    // A smaller pull (replicas sharing a connection) keeps the default, so that a refill's round trip
    // never leaves the server with just one message of credit.
    const pull = this.#pullMessages();
    const iter = await consumer.consume({
      max_messages: pull,
      ...(pull >= 8 ? { threshold_messages: pull >> 2 } : {}),
    });
    this.messages = iter;
    if (this.#ctx.closed) iter.stop();
    let lastSeq = startSeq - 1;
    let lastDeliveryAt = this.#o.clock.now();
    let stuck: string | undefined;
    const watchdog = this.#watchdog(
      () => ({ lastSeq, lastDeliveryAt }),
      (why) => {
        stuck = why;
        iter.stop();
      },
    );
    try {
      for await (const m of iter) {
        if (this.#ctx.closed) break;
        lastSeq = m.seq;
        lastDeliveryAt = this.#o.clock.now();
        const chunk = parseChunkHeaders(messageHeaders(m), m.data, m.seq);
        if (m.info.pending > 0) this.#ctx.behindSince ??= this.#o.clock.now();
        const tx = assembler.add(chunk, m.data, m.seq);
        if (tx && this.#skipApplied) {
          // After a rebase: what the replica already holds is skipped, up to the first transaction after it.
          if (tx.meta.txid <= this.#ctx.pos.txid && tx.meta.kind !== TxKind.Full) {
            this.#ctx.pos = { ...this.#ctx.pos, seq: m.seq };
            continue;
          }
          this.#skipApplied = false;
        }
        if (tx) {
          this.#batch.push({ meta: tx.meta, body: tx.body, lastSeq: tx.lastSeq });
          this.#batchBytes += tx.body.length;
        }
        // A batch goes to the applier when the stream holds nothing after it, and also as soon as no further
        // message is already here: one still on its way from the server (`info.pending` counts it) is not
        // waited for, since pipelined commits follow each other by less than a round trip.
        if (
          this.#batch.length > 0 &&
          (m.info.pending === 0 ||
            iter.getPending() === 0 ||
            this.#batch.length >= this.#o.batchMaxTransactions ||
            this.#batchBytes >= this.#o.batchMaxBytes ||
            tx?.meta.kind === TxKind.Full)
        ) {
          const batch = this.#batch;
          this.#batch = [];
          this.#batchBytes = 0;
          await this.#ctx.locked(() => this.#applier.applyBatch(batch));
          this.#stalls.progress();
        }
        if (m.info.pending === 0 && this.#batch.length === 0) this.#ctx.behindSince = undefined;
        this.#ctx.notify();
      }
    } finally {
      watchdog();
      iter.stop();
      this.messages = undefined;
      dropConsumer(consumer);
    }
    if (stuck && !this.#ctx.closed) throw new Error(stuck);
  }

  /**
   * Watches a consume loop: when the stream holds messages after the last one delivered and nothing came
   * for {@link CONSUMER_STALL_MS}, the consumer is stuck (seen when the server leading the stream of a
   * cluster was killed: the ordered consumer neither delivered nor reset) — `onStuck` stops it and the loop
   * starts a new one from the position. Returns a function that ends the watch.
   */
  #watchdog(
    seen: () => { lastSeq: number; lastDeliveryAt: number },
    onStuck: (why: string) => void,
  ): () => void {
    let timer: TimerHandle | undefined;
    let ended = false;
    const check = async () => {
      timer = undefined;
      if (ended || this.#ctx.closed) return;
      const s = seen();
      const idleMs = this.#o.clock.now() - s.lastDeliveryAt;
      if (idleMs >= CONSUMER_STALL_MS) {
        const last = await this.#ctx.jsm.streams
          .info(this.#ctx.names.stream)
          .then((i) => i.state.last_seq)
          // The server is away: the next check looks again.
          .catch(() => undefined);
        if (!ended && last !== undefined && last > s.lastSeq) {
          onStuck(
            `the stream consumer delivered nothing for ${Math.round(idleMs)} ms while the stream holds up to seq ${last} (last delivered ${s.lastSeq}): starting a new one`,
          );
          return;
        }
      }
      if (!ended) timer = this.#o.clock.setTimeout(() => void check(), CONSUMER_STALL_MS / 2);
    };
    timer = this.#o.clock.setTimeout(() => void check(), CONSUMER_STALL_MS / 2);
    return () => {
      ended = true;
      if (timer) this.#o.clock.clearTimeout(timer);
    };
  }
}

/** A consumer that delivers nothing this long while the stream has more is replaced. */
const CONSUMER_STALL_MS = 5000;
