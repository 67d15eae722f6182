import { PageHashes, type SqliteDatabase } from '@gc/sqlite';
import { emitAll } from '../listeners.js';
import type { WalNames } from '../stream.js';
import type { PrimaryEvent, PrimaryOptions } from '../types.js';

/**
 * What the parts of a primary (capture, outbox, checkpoints, file verification, start-up) share: its
 * options, its listeners and the captured state — the page hashes of the database as of the last commit
 * captured, its page size and that commit's txid. Created by the engine and handed to every part.
 */
export class PrimaryContext {
  readonly o: PrimaryOptions;
  readonly names: WalNames;
  /** The primary's own connection to the database, for the app. */
  readonly db: SqliteDatabase;
  /** Upper bound of a message body in bytes. */
  readonly maxChunk: number;
  readonly listeners = new Set<(e: PrimaryEvent) => void>();
  /** Page hashes of the captured state. */
  hashes = new PageHashes();
  /** Page size of the captured state (0 until known). */
  pageSize = 0;
  /** Last txid captured from the WAL (may not be in the stream yet). */
  capturedTxid = 0;

  constructor(o: PrimaryOptions, names: WalNames, db: SqliteDatabase, maxChunk: number) {
    this.o = o;
    this.names = names;
    this.db = db;
    this.maxChunk = maxChunk;
  }

  emit(e: PrimaryEvent): void {
    emitAll(this.listeners, e, this.o.logger, 'primary');
  }
}
