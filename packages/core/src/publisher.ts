import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { ClosedError, TimeoutError } from './errors.js';
import { closedSignal } from './lifecycle.js';

/** The stream's acknowledgement of one stored message. */
export interface StreamAck {
  /** Stream sequence of the message. */
  seq: number;
  /** True when the stream already held a message with this message id (nothing was stored). */
  duplicate: boolean;
}

/** The stream refused a message (JetStream API error), or no stream listens on the subject. */
export class StreamPublishError extends Error {
  /** JetStream error code (`err_code`; 10071 = wrong last sequence), 0 when none. */
  readonly errCode: number;
  constructor(message: string, errCode: number) {
    super(message);
    this.name = 'StreamPublishError';
    this.errCode = errCode;
  }
}

interface Pending {
  resolve: (a: StreamAck) => void;
  reject: (e: Error) => void;
  deadline: number;
  timeoutMs: number;
}

/**
 * Publishes to a JetStream stream and collects the acks on one wildcard inbox subscription of its own.
 *
 * What `JetStreamClient.publish` does per message — a request object, a timer and, when the reply
 * arrives, an `Error` built to cancel the request — was a large part of the primary's cost per
 * transaction. Here a message costs a publish and a map entry; one sweep a second times out the ones
 * whose ack is late. Semantics are those of a JetStream publish: the ack carries the stream sequence,
 * a refusal (wrong last sequence, …) rejects with {@link StreamPublishError}, no stream on the subject
 * (no responders) too.
 */
export class StreamPublisher {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #closedSignal = closedSignal();

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    const custom = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.#prefix = createInbox(custom);
    this.#sub = nc.subscribe(`${this.#prefix}.*`, { callback: (err, m) => this.#onReply(err, m) });
  }

  /** Publishes `data` with `headers` (the caller's message id and expectations) and resolves with the ack. */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<StreamAck> {
    if (this.#closed) return Promise.reject(new ClosedError('stream publisher'));
    const id = ++this.#next;
    return new Promise<StreamAck>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline: performance.now() + timeoutMs, timeoutMs });
      try {
        this.#nc.publish(subject, data, { headers, reply: `${this.#prefix}.${id}` });
      } catch (err) {
        this.#pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.#sweep ??= setInterval(() => this.#expire(), Math.min(1000, Math.max(10, timeoutMs / 4)));
      this.#sweep.unref?.();
    });
  }

  /** Rejects what is still waiting and drops the subscription. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#sweep) clearInterval(this.#sweep);
      this.#sweep = undefined;
      for (const p of this.#pending.values()) p.reject(new ClosedError('stream publisher'));
      this.#pending.clear();
      this.#sub.unsubscribe();
    } finally {
      this.#closedSignal.resolve();
    }
  }

  /**
   * Resolves once the publisher has closed: after `close()` has finished. Never rejects. A publisher does
   * not close by itself (on a connection closed for good its publishes fail; `close()` still ends it).
   */
  closed(): Promise<void> {
    return this.#closedSignal.promise;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return this.#closedSignal.promise;
  }

  #onReply(err: Error | null, m: Msg): void {
    if (err) return; // the subscription ends only on close or a connection closed for good
    // Acks are handled after the rest of this turn's input: the messages that came in the same read
    // (a replica's delivery of what was just stored, on a shared connection) go first.
    this.#replies.push(m);
    if (this.#replies.length === 1) setImmediate(() => this.#drainReplies());
  }
  #replies: Msg[] = [];

  #drainReplies(): void {
    const replies = this.#replies;
    this.#replies = [];
    for (const m of replies) this.#settle(m);
  }

  #settle(m: Msg): void {
    const id = Number(m.subject.slice(this.#prefix.length + 1));
    const p = this.#pending.get(id);
    if (!p) return; // timed out already
    this.#pending.delete(id);
    if (m.data.length === 0 && m.headers?.code === 503) {
      p.reject(new StreamPublishError('no stream answered (no responders)', 0));
      return;
    }
    let ack: { seq?: unknown; duplicate?: unknown; error?: { description?: string; err_code?: number } };
    try {
      ack = m.json();
    } catch {
      p.reject(new StreamPublishError('unreadable stream ack', 0));
      return;
    }
    if (ack.error) {
      p.reject(new StreamPublishError(ack.error.description ?? 'stream error', ack.error.err_code ?? 0));
    } else if (typeof ack.seq !== 'number') {
      p.reject(new StreamPublishError('stream ack without a sequence', 0));
    } else {
      p.resolve({ seq: ack.seq, duplicate: ack.duplicate === true });
    }
  }

  #expire(): void {
    const now = performance.now();
    for (const [id, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(id);
      p.reject(new TimeoutError('stream publish ack', p.timeoutMs));
    }
    if (this.#pending.size === 0 && this.#sweep) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }
}
