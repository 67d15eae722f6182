import { createHash } from 'node:crypto';
import { realClock, type Clock, type Logger } from '@gc/core';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { IdempotencyConflictError, RpcTimeoutError } from './errors.js';
import type { IdempotencyOptions } from './types.js';

/** Defaults for {@link IdempotencyOptions}. */
export function defaultIdempotencyOptions(): IdempotencyOptions {
  return {
    retentionMs: 86_400_000,
    claimTtlMs: 10_000,
    pollIntervalMs: 25,
    storeRetryMs: 30_000,
    replicas: 1,
  };
}

/** The encoded reply of one execution: `error` is the error code for error replies. */
export interface StoredReply {
  readonly error?: string;
  readonly body: Uint8Array;
}

/** A record under an idempotency key: a claim of a running execution, or its stored reply. */
type IdemRecord =
  | { s: 'pending'; node: string; h: string; at: number }
  | { s: 'done'; node: string; h: string; e?: string; b: string };

/** Idempotency bucket name: `{platform}_{app}_rpc_idem`. */
export function idempotencyBucket(platform: string, app: string): string {
  return `${platform}_${app}_rpc_idem`;
}

/** sha256 of the payload bytes, hex: a repeated key must come with the same payload. */
export function payloadHash(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Exactly-once execution per idempotency key on a JetStream KV bucket (history 1, max age
 * `retentionMs`). The first request claims the key with `create` (atomic: only one wins), runs the
 * handler while renewing the claim, and stores the encoded reply under the key. A duplicate that finds
 * a claim waits for the stored reply; one that finds a stored reply returns it without running the
 * handler. A claim that is not renewed for `claimTtlMs` (its executor crashed) is taken over with a
 * compare-and-set on its revision, and the handler runs again.
 */
export class IdempotencyStore {
  readonly #nc: NatsConnection;
  readonly #bucket: string;
  readonly #o: IdempotencyOptions;
  readonly #node: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  #kv: Promise<KV> | undefined;

  constructor(
    nc: NatsConnection,
    bucket: string,
    node: string,
    opts: IdempotencyOptions,
    log: Logger,
    clock: Clock = realClock,
  ) {
    this.#nc = nc;
    this.#bucket = bucket;
    this.#node = node;
    this.#o = opts;
    this.#log = log;
    this.#clock = clock;
  }

  #open(): Promise<KV> {
    if (!this.#kv) {
      this.#kv = new Kvm(this.#nc)
        .create(this.#bucket, { history: 1, ttl: this.#o.retentionMs, replicas: this.#o.replicas })
        .catch((err: unknown) => {
          this.#kv = undefined;
          throw err;
        });
    }
    return this.#kv;
  }

  /**
   * Runs `run` at most once per (`method`, `key`) while it completes, and returns its reply (or the
   * stored reply of an earlier execution). `hash` is the payload hash; `deadlineMs` (clock time) bounds
   * how long a duplicate waits for a running execution.
   */
  async execute(
    app: string,
    method: string,
    key: string,
    hash: string,
    deadlineMs: number,
    run: () => Promise<StoredReply>,
  ): Promise<StoredReply> {
    const kvKey = `${method}.${createHash('sha256').update(key).digest('hex')}`;
    const claim = (): Uint8Array =>
      enc.encode(JSON.stringify({ s: 'pending', node: this.#node, h: hash, at: this.#clock.wallNow() }));
    let seen: { revision: number; since: number } | undefined;
    for (;;) {
      if (this.#clock.now() > deadlineMs) {
        throw new RpcTimeoutError(
          app,
          method,
          Math.max(0, Math.round(deadlineMs - (seen?.since ?? deadlineMs))),
          'handler',
        );
      }
      let kv: KV;
      try {
        kv = await this.#open();
      } catch (err) {
        this.#log.warn('idempotency bucket unavailable, retrying', {
          bucket: this.#bucket,
          error: (err as Error).message,
        });
        await this.#clock.sleep(this.#o.pollIntervalMs * 4);
        continue;
      }
      let revision: number | undefined;
      try {
        revision = await kv.create(kvKey, claim());
      } catch {
        // The key exists (or JetStream is briefly unavailable): read it below.
      }
      if (revision === undefined) {
        let entry;
        try {
          entry = await kv.get(kvKey);
        } catch (err) {
          this.#log.debug('idempotency read failed, retrying', { error: (err as Error).message });
          await this.#clock.sleep(this.#o.pollIntervalMs * 4);
          continue;
        }
        if (!entry || entry.operation !== 'PUT') continue; // expired or deleted: claim again
        const rec = JSON.parse(dec.decode(entry.value)) as IdemRecord;
        if (rec.h !== hash) throw new IdempotencyConflictError(app, method, key);
        if (rec.s === 'done') {
          const body = Buffer.from(rec.b, 'base64');
          return rec.e ? { error: rec.e, body } : { body };
        }
        const now = this.#clock.now();
        if (!seen || seen.revision !== entry.revision) seen = { revision: entry.revision, since: now };
        if (now - seen.since < this.#o.claimTtlMs) {
          await this.#clock.sleep(this.#o.pollIntervalMs);
          continue;
        }
        // The claim was not renewed for claimTtlMs: its executor is gone. Take it over (CAS).
        try {
          revision = await kv.update(kvKey, claim(), entry.revision);
          this.#log.warn('took over an abandoned idempotent execution', {
            app,
            method,
            previousNode: rec.node,
          });
        } catch {
          // Another node took the claim over first (or the write failed): the loop reads the claim again.
          continue;
        }
      }
      return this.#runClaimed(kv, kvKey, revision, hash, claim, run);
    }
  }

  async #runClaimed(
    kv: KV,
    kvKey: string,
    revision: number,
    hash: string,
    claim: () => Uint8Array,
    run: () => Promise<StoredReply>,
  ): Promise<StoredReply> {
    let rev = revision;
    let renewing = true;
    const renewEveryMs = Math.max(10, Math.floor(this.#o.claimTtlMs / 3));
    let timer: object | undefined;
    const renew = () => {
      timer = this.#clock.setTimeout(() => {
        kv.update(kvKey, claim(), rev)
          .then(
            (r) => {
              rev = r;
            },
            (err: unknown) =>
              this.#log.warn('could not renew an idempotency claim', {
                key: kvKey,
                error: (err as Error).message,
              }),
          )
          .finally(() => {
            if (renewing && !this.#nc.isClosed()) renew();
          });
      }, renewEveryMs);
    };
    renew();
    let reply: StoredReply;
    try {
      reply = await run();
    } finally {
      renewing = false;
      if (timer) this.#clock.clearTimeout(timer);
    }
    await this.#store(kv, kvKey, {
      s: 'done',
      node: this.#node,
      h: hash,
      ...(reply.error ? { e: reply.error } : {}),
      b: Buffer.from(reply.body).toString('base64'),
    });
    return reply;
  }

  async #store(kv: KV, kvKey: string, rec: IdemRecord): Promise<void> {
    const until = this.#clock.now() + this.#o.storeRetryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await kv.put(kvKey, enc.encode(JSON.stringify(rec)));
        return;
      } catch (err) {
        if (this.#clock.now() >= until || this.#nc.isClosed()) {
          this.#log.error(
            'could not store an idempotent result: a retry after the claim expires runs the handler again',
            {
              key: kvKey,
              error: (err as Error).message,
            },
          );
          return;
        }
        await this.#clock.sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
      }
    }
  }
}
