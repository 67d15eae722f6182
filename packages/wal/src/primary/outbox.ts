import type { JetStreamManager } from '@nats-io/jetstream';
import { formatChecksum } from '@gc/sqlite';
import { NotLeaderError } from '../errors.js';
import { emptyPosition, primarySidecarPath, writePosition, type WalPosition } from '../position.js';
import type { StreamAck, StreamPublisher } from '@gc/core';
import type { WalNames } from '../stream.js';
import type { PrimaryOptions } from '../types.js';
import { encodeBody, encodeTx, type TxKindValue, type TxMeta, type WireChunk } from '../wire.js';
import type { PrimaryContext } from './context.js';

/** One message of a captured transaction, waiting for the stream's ack. */
export interface Outgoing {
  txid: number;
  chunk: WireChunk;
  msgId: string;
  meta: TxMeta;
}

/** A captured transaction (or group of commits) as the history knows it: its state after, and its seq once acked. */
export interface HistoryEntry {
  txid: number;
  epoch: number;
  after: bigint;
  dbPages: number;
  seq: number;
}

/**
 * The captured transactions on their way to the stream: the queue of messages, their publishing (only the
 * current leader appends), acks, reconciliation after an ambiguous failure, the waiters of `sync()` and the
 * primary's sidecar with the last acknowledged position.
 */
export class Outbox {
  readonly #ctx: PrimaryContext;
  readonly #o: PrimaryOptions;
  readonly #names: WalNames;
  readonly #jsm: JetStreamManager;
  readonly publisher: StreamPublisher;
  /** Messages waiting for a stream ack, in order. */
  queue: Outgoing[] = [];
  /** Captured transactions in txid order (the tip it started from first), for `snapshotTo`. */
  history: HistoryEntry[] = [];
  /** Last position the stream acknowledged. */
  acked: WalPosition = emptyPosition();
  /** The stream's last sequence as this primary knows it. */
  lastSeq = 0;
  ackWaiters: Array<{ txid: number; resolve: () => void; reject: (e: Error) => void }> = [];
  /** Set once the stream refused this primary (another leader appended). */
  deposed: NotLeaderError | undefined;
  /** Set by `stop()`: nothing more is published. */
  closedHard = false;
  #sidecarWrittenAt = 0;

  constructor(ctx: PrimaryContext, publisher: StreamPublisher, jsm: JetStreamManager) {
    this.#ctx = ctx;
    this.#o = ctx.o;
    this.#names = ctx.names;
    this.publisher = publisher;
    this.#jsm = jsm;
  }

  /** History entry of `txid` (entries are in txid order; a group has one, at its last txid). */
  historyEntry(txid: number): HistoryEntry | undefined {
    let lo = 0;
    let hi = this.history.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.history[mid]!;
      if (e.txid === txid) return e;
      if (e.txid < txid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  queueTx(kind: TxKindValue, pages: Array<[number, Buffer]>, before: bigint, after: bigint, txs = 1): number {
    const txid = (this.#ctx.capturedTxid += txs);
    const meta: TxMeta = {
      epoch: this.#o.epoch,
      txid,
      txs,
      kind,
      pageSizeBytes: this.#ctx.pageSize,
      dbPages: this.#ctx.hashes.pageCount,
      pages: pages.length,
      before,
      after,
      commitTimeMs: this.#o.clock.wallNow(),
    };
    const body = encodeBody(pages, this.#ctx.pageSize, pages.length);
    for (const chunk of encodeTx(meta, body, this.#ctx.maxChunk)) {
      const msgId = `${this.#names.stream}:${meta.epoch}:${txid}:${chunk.index}`;
      chunk.headers.append('Nats-Msg-Id', msgId);
      this.queue.push({ txid, chunk, meta, msgId });
    }
    this.history.push({ txid, epoch: meta.epoch, after, dbPages: meta.dbPages, seq: 0 });
    if (this.history.length > 20_000) this.history.splice(0, 10_000);
    return txid;
  }

  /**
   * Publishes what is queued and not yet on its way, up to `publishWindow` messages in flight. Messages are
   * pipelined: each carries the sequence the stream must have before it (the last acknowledged one plus its
   * place in the flight) and, behind the first, the id of the message before it, so a new commit goes out
   * at once instead of waiting for the acks of the ones before it, and the stream still appends only this
   * leader's messages, in order, without gaps: one refused message makes every later one in the flight
   * refused too, whatever another leader appended meanwhile.
   */
  pump(): void {
    if (this.deposed || this.closedHard || this.#reconciling) return;
    const window = this.#o.publishWindow;
    while (this.#sent < this.queue.length && this.#sent < window) {
      const m = this.queue[this.#sent]!;
      const h = m.chunk.headers;
      h.set('Nats-Expected-Last-Sequence', String(this.lastSeq + this.#sent));
      // Behind the first message of a flight, the sequence alone is not enough: when a message ahead is
      // refused because another leader appended, that leader's message fills the very sequence the next
      // one expects, and the next one would land after it. So each also names the message it must follow;
      // the first follows an acknowledged message of ours, which its sequence pins down.
      if (this.#sent > 0) h.set('Nats-Expected-Last-Msg-Id', this.queue[this.#sent - 1]!.msgId);
      else if (h.has('Nats-Expected-Last-Msg-Id')) h.delete('Nats-Expected-Last-Msg-Id');
      const ack = this.publisher.publish(
        this.#names.subject,
        m.chunk.data,
        m.chunk.headers,
        this.#o.publishTimeoutMs,
      );
      // Awaited in order by the ack loop; a refusal behind the first one is read there, not unhandled.
      ack.catch(() => undefined);
      this.#inflight.push(ack);
      this.#sent++;
    }
    if (!this.#acking && this.#inflight.length > 0) {
      this.#acking = true;
      void this.#ackLoop().finally(() => {
        this.#acking = false;
        if (this.queue.length && !this.deposed && !this.closedHard) this.pump();
      });
    }
  }
  /** How many messages at the head of `queue` are published and waiting for their ack. */
  #sent = 0;
  /** Their acks, in queue order. */
  #inflight: Array<Promise<StreamAck>> = [];
  #acking = false;
  /** Set while a failure is being reconciled: nothing is published meanwhile. */
  #reconciling = false;

  /** Takes the acks in order; on the first failure lets the flight land, then reconciles with the stream. */
  async #ackLoop(): Promise<void> {
    let backoffMs = 50;
    while (this.#inflight.length > 0) {
      let cause: Error | undefined;
      try {
        const ack = await this.#inflight[0]!;
        if (ack.seq !== this.lastSeq + 1) cause = new Error(`ack at unexpected seq ${ack.seq}`);
      } catch (err) {
        cause = err as Error;
      }
      if (!cause) {
        void this.#inflight.shift(); // settled: awaited just above
        this.#sent--;
        this.#commitPublished(1);
        backoffMs = 50;
        this.pump();
        continue;
      }
      // Ambiguous: a timeout may have stored the message, a wrong-last-sequence may mean another leader.
      // Nothing more goes out until every message in flight has its answer and the stream's tip is known.
      this.#reconciling = true;
      try {
        await Promise.allSettled(this.#inflight);
        this.#inflight = [];
        this.#sent = 0;
        await this.#reconcile(cause, backoffMs);
      } finally {
        this.#reconciling = false;
      }
      backoffMs = Math.min(2000, backoffMs * 2);
      this.pump();
    }
  }

  #commitPublished(n: number): void {
    for (const m of this.queue.splice(0, n)) {
      this.lastSeq++;
      if (m.chunk.index === m.chunk.count - 1) {
        const h = this.historyEntry(m.txid);
        if (h) h.seq = this.lastSeq;
        this.acked = {
          txid: m.txid,
          seq: this.lastSeq,
          epoch: m.meta.epoch,
          checksum: formatChecksum(m.meta.after),
          pageSizeBytes: m.meta.pageSizeBytes,
          dbPages: m.meta.dbPages,
        };
        this.#ctx.emit({ type: 'published', txid: m.txid, seq: this.lastSeq });
      }
    }
    if (n > 0) {
      this.#resolveWaiters();
      this.writeSidecar(false);
    }
  }

  async #reconcile(cause: Error, backoffMs: number): Promise<void> {
    for (;;) {
      if (this.closedHard) return;
      let tip;
      try {
        tip = await this.#jsm.streams.info(this.#names.stream).then(async (info) => {
          const seq = info.state.last_seq;
          const m = seq > 0 ? await this.#jsm.streams.getMessage(this.#names.stream, { seq }) : null;
          return { seq, msgId: m?.header.get('Nats-Msg-Id') ?? '' };
        });
      } catch {
        await this.#o.clock.sleep(backoffMs);
        continue;
      }
      if (tip.seq === this.lastSeq) {
        await this.#o.clock.sleep(backoffMs);
        return;
      }
      const idx = this.queue.findIndex((m) => m.msgId === tip.msgId);
      if (idx >= 0 && tip.seq === this.lastSeq + idx + 1) {
        this.#commitPublished(idx + 1);
        return;
      }
      const error = new NotLeaderError(
        this.#o.epoch,
        `the stream's last sequence is ${tip.seq} (message ${tip.msgId || '?'}), this primary expected ${this.lastSeq}`,
        { cause },
      );
      this.deposed = error;
      this.#o.logger.warn('wal primary deposed', { err: error.message });
      this.#ctx.emit({ type: 'not-leader', error });
      this.rejectWaiters(error);
      return;
    }
  }

  #resolveWaiters(): void {
    const acked = this.acked.txid;
    this.ackWaiters = this.ackWaiters.filter((w) => {
      if (w.txid <= acked) w.resolve();
      return w.txid > acked;
    });
  }

  rejectWaiters(err: Error): void {
    for (const w of this.ackWaiters) w.reject(err);
    this.ackWaiters = [];
  }

  writeSidecar(force: boolean): void {
    const now = this.#o.clock.now();
    if (!force && now - this.#sidecarWrittenAt < 200) return;
    this.#sidecarWrittenAt = now;
    try {
      writePosition(
        primarySidecarPath(this.#o.path),
        {
          ...this.acked,
          platform: this.#names.platform,
          app: this.#names.app,
          role: 'primary',
          updatedAtMs: this.#o.clock.wallNow(),
          leaderEpoch: this.#o.epoch,
        },
        false,
      );
    } catch (err) {
      this.#ctx.emit({ type: 'error', error: err as Error });
    }
  }
}
