import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { DeliverPolicy } from '@nats-io/jetstream';
import { PageHashes, formatChecksum, hashFile, lockPageNumber, pageHash } from '@gc/sqlite';
import { checkNext } from '../decisions.js';
import { CorruptMessageError } from '../errors.js';
import { messageHeaders } from '../headers.js';
import type { WalPosition } from '../position.js';
import { TxAssembler, TxKind, bodyPages, parseChunkHeaders, type TxMeta } from '../wire.js';
import { writeTxPages } from './apply.js';
import { dropConsumer, type ReplicaContext } from './context.js';

// Crash recovery of a replica's own copy, from the stream. A replica writes a batch's pages and records its
// position later (after an fsync, see Applier.flush), so a crash in between leaves the file ahead of the
// position: some transactions after it written, the last one perhaps only in part, or — after an OS crash —
// some of their pages lost. Every page of the file that differs from the position's state was written by a
// transaction after it, and the stream's messages carry those transactions' whole pages. Writing them again
// in order, from the position on, therefore ends at exactly a transaction's state once the transactions the
// crash interrupted are redone; the replica stops at the first transaction whose `after` checksum the file
// then has, confirmed by hashing the whole file, and continues from there. Nothing is trusted that was not
// checked: a copy changed by anything else never reaches such a state and is bootstrapped.

/** The outcome of {@link redoFromStream}. */
export type RedoResult =
  | { done: true; position: WalPosition; hashes: PageHashes; transactions: number }
  | { done: false; reason: string };

/**
 * Redoes the stream's transactions after `ctx.pos` on the replica file, whose pages hash to `file` now,
 * until the file holds exactly one transaction's state (see above). Reads no further than the stream's
 * last message at the start. The replica file is changed even when this fails; the caller then bootstraps.
 */
export async function redoFromStream(ctx: ReplicaContext, file: PageHashes): Promise<RedoResult> {
  const info = await ctx.jsm.streams.info(ctx.names.stream);
  const { first_seq: first, last_seq: last } = info.state;
  const start = ctx.pos.seq + 1;
  if (ctx.streamCreated !== undefined && ctx.streamCreated !== info.created)
    return { done: false, reason: 'the WAL stream was deleted and made anew' };
  if (info.state.messages === 0 || start < first || start > last)
    return {
      done: false,
      reason: `the stream holds no transactions right after seq ${ctx.pos.seq} (it holds ${first}..${last})`,
    };
  const consumer = await ctx.js.consumers.get(ctx.names.stream, {
    filter_subjects: ctx.names.subject,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: start,
  });
  const fd = openSync(ctx.replicaPath, 'r+');
  const size = { bytes: fstatSync(fd).size };
  let hashes = file;
  let state = { txid: ctx.pos.txid, epoch: ctx.pos.epoch };
  let transactions = 0;
  const assembler = new TxAssembler();
  const iter = await consumer.consume({ max_messages: 64 });
  try {
    for await (const m of iter) {
      if (ctx.closed) return { done: false, reason: 'closed' };
      const tx = assembler.add(parseChunkHeaders(messageHeaders(m), m.data, m.seq), m.data, m.seq);
      if (tx) {
        const meta = tx.meta;
        // Txid and epoch must continue from the position; the `before` checksum cannot be checked (the file
        // is not at the position's state), so the check is given the message's own.
        checkNext({ ...state, checksum: meta.before }, meta, tx.lastSeq);
        state = { txid: meta.txid, epoch: meta.epoch };
        transactions++;
        writeTxPages(fd, { ...meta, body: tx.body }, size);
        hashes = nextHashes(hashes, meta, tx.body, tx.lastSeq);
        if (hashes.checksum === meta.after) {
          fsyncSync(fd);
          // The hashes above assume what SQLite guarantees of the pages no transaction wrote; the file's
          // own hashes decide.
          const actual = hashFile(ctx.replicaPath, {
            pageSizeBytes: meta.pageSizeBytes || undefined,
            pageCount: meta.dbPages,
          });
          if (actual.checksum === meta.after) {
            const position: WalPosition = {
              txid: meta.txid,
              seq: tx.lastSeq,
              epoch: meta.epoch,
              checksum: formatChecksum(meta.after),
              pageSizeBytes: meta.pageSizeBytes || ctx.pos.pageSizeBytes,
              dbPages: meta.dbPages,
            };
            return { done: true, position, hashes: actual, transactions };
          }
          hashes = actual;
        }
      }
      if (m.seq >= last) break;
    }
    return {
      done: false,
      reason: `no transaction up to the stream's seq ${last} (${transactions} redone) gives the file's state`,
    };
  } finally {
    iter.stop();
    dropConsumer(consumer);
    closeSync(fd);
  }
}

/** `hashes` after a transaction's pages were written and the file's size set to its `dbPages`. */
function nextHashes(hashes: PageHashes, meta: TxMeta, body: Buffer, seq: number): PageHashes {
  const next = meta.kind === TxKind.Full ? new PageHashes() : hashes;
  const lock = meta.pageSizeBytes ? lockPageNumber(meta.pageSizeBytes) : 0;
  for (const [p, page] of bodyPages(body, meta.pageSizeBytes)) {
    if (p < 1 || p > meta.dbPages || p === lock)
      throw new CorruptMessageError(seq, `page number ${p} outside 1..${meta.dbPages}`);
    next.set(p, pageHash(p, page, meta.pageSizeBytes));
  }
  next.resize(meta.dbPages);
  return next;
}
