import { ClosedError, TimeoutError, type ConnectOptions } from '@gc/core';
import { NotAtTipError, NotLeaderError, type NotAtTipKind } from '../errors.js';
import type { PrimaryEvent, PrimaryOptions, PrimaryPosition } from '../types.js';

// Messages between a primary's facade on the application's thread and its capture engine in a worker
// thread (see `PrimaryOptions.worker`). Everything here is structured-clone data.

/** Options the engine is started with: the primary's plain options and the worker's connection. */
export interface WorkerStart {
  options: Omit<PrimaryOptions, 'clock' | 'logger' | 'onEvent' | 'worker'>;
  connect: Partial<ConnectOptions>;
  logLevel: string;
  /** Shared word of the write-lock hand-over (see `write-lock.ts`). */
  lockWord: Int32Array;
}

/** An error as plain data. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  epoch?: number;
  /** NotAtTipError's fields. */
  notAtTip?: {
    kind: NotAtTipKind;
    tipTxid: number;
    tipChecksum: string;
    localTxid: number;
    localChecksum: string;
  };
}

/** A primary event as plain data (its error, if any, flattened). */
export type WireEvent =
  Exclude<PrimaryEvent, { error: Error }> | { type: 'not-leader' | 'error'; error: WireError };

/** The facade's requests. */
export type ToWorker =
  | { type: 'tick' }
  | { type: 'call'; id: number; method: 'sync' | 'checkpoint' | 'snapshotTo' | 'stop'; arg?: unknown };

/** The engine's messages. */
export type FromWorker =
  | { type: 'ready'; position: PrimaryPosition }
  | { type: 'failed'; error: WireError }
  | { type: 'events'; events: WireEvent[]; position: PrimaryPosition }
  | { type: 'lock' }
  | { type: 'log'; level: 'trace' | 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: unknown }
  | { type: 'reply'; id: number; ok: true; value: unknown; position: PrimaryPosition }
  | { type: 'reply'; id: number; ok: false; error: WireError; position: PrimaryPosition };

export function toWireError(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const w: WireError = { name: e.name, message: e.message };
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') w.code = code;
  if (e instanceof NotLeaderError) w.epoch = e.epoch;
  if (e instanceof NotAtTipError)
    w.notAtTip = {
      kind: e.kind,
      tipTxid: e.tipTxid,
      tipChecksum: e.tipChecksum,
      localTxid: e.localTxid,
      localChecksum: e.localChecksum,
    };
  return w;
}

/** Rebuilds an error of the same class where the facade's callers may check it (`instanceof`). */
export function fromWireError(w: WireError): Error {
  let e: Error;
  if (w.name === 'NotLeaderError') e = new NotLeaderError(w.epoch ?? 0, '');
  else if (w.name === 'TimeoutError') e = new TimeoutError('', 0);
  else if (w.name === 'ClosedError') e = new ClosedError('');
  else if (w.name === 'NotAtTipError' && w.notAtTip) {
    const n = w.notAtTip;
    e = new NotAtTipError(
      n.kind,
      '',
      { txid: n.tipTxid, checksum: n.tipChecksum },
      { txid: n.localTxid, checksum: n.localChecksum },
      '',
    );
  } else {
    e = new Error(w.message);
    e.name = w.name;
    if (w.code) (e as { code?: string }).code = w.code;
  }
  e.message = w.message;
  return e;
}

export function toWireEvent(e: PrimaryEvent): WireEvent {
  if (e.type === 'not-leader' || e.type === 'error') return { type: e.type, error: toWireError(e.error) };
  return e;
}

export function fromWireEvent(e: WireEvent): PrimaryEvent {
  if (e.type === 'not-leader') return { type: 'not-leader', error: fromWireError(e.error) as NotLeaderError };
  if (e.type === 'error') return { type: 'error', error: fromWireError(e.error) };
  return e as PrimaryEvent;
}
