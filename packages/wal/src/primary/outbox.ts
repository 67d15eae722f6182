import type { JetStreamManager } from '@nats-io/jetstream';
import { formatChecksum } from '@gc/sqlite';
import { NotLeaderError } from '../errors.js';
import { primarySidecarPath, writePosition, type WalPosition } from '../position.js';
import type { StreamPublisher } from '../publisher.js';
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
  acked: WalPosition = {
    txid: 0,
    seq: 0,
    epoch: 0,
    checksum: formatChecksum(0n),
    pageSizeBytes: 0,
    dbPages: 0,
  };
  /** The stream's last sequence as this primary knows it. */
  lastSeq = 0;
  ackWaiters: Array<{ txid: number; resolve: () => void; reject: (e: Error) => void }> = [];
  /** Set once the stream refused this primary (another leader appended). */
  deposed: NotLeaderError | undefined;
  /** Set by `stop()`: nothing more is published. */
  closedHard = false;
  #pumping = false;
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

  pump(): void {
    if (this.#pumping || this.deposed) return;
    this.#pumping = true;
    void this.#pumpLoop().finally(() => {
      this.#pumping = false;
      if (this.queue.length && !this.deposed && !this.closedHard) this.pump();
    });
  }

  async #pumpLoop(): Promise<void> {
    let backoffMs = 50;
    while (this.queue.length && !this.deposed && !this.closedHard) {
      const batch = this.queue.slice(0, this.#o.publishWindow);
      const base = this.lastSeq;
      const pending = batch.map((m, i) => {
        // Only the current leader appends: the stream refuses a message whose expected last sequence is
        // not its last one. The message id lets a retry after a lost ack be recognised (#reconcile).
        m.chunk.headers.set('Nats-Expected-Last-Sequence', String(base + i));
        return this.publisher.publish(
          this.#names.subject,
          m.chunk.data,
          m.chunk.headers,
          this.#o.publishTimeoutMs,
        );
      });
      const results = await Promise.allSettled(pending);
      let ok = 0;
      for (const r of results) {
        if (r.status === 'fulfilled' && r.value.seq === base + ok + 1) ok++;
        else break;
      }
      this.#commitPublished(ok);
      if (ok === batch.length) {
        backoffMs = 50;
        continue;
      }
      const failure = results[ok]!;
      const cause =
        failure.status === 'rejected'
          ? (failure.reason as Error)
          : new Error(`ack at unexpected seq ${failure.value.seq}`);
      // Ambiguous: a timeout may have stored the message, a wrong-last-sequence may mean another leader.
      await this.#reconcile(cause, backoffMs);
      backoffMs = Math.min(2000, backoffMs * 2);
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
